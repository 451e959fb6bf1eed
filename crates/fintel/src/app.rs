//! What commands share: configuration, clock, and the builders of the store, SEC client,
//! provider, analyses and key pool.

use std::sync::Arc;

use anyhow::Result;
use fintel_edgar::{EdgarClient, EdgarConfig};
use fintel_engine::{EngineSettings, KeyPool, MaintenancePlan, Upkeep};
use fintel_llm::{GeminiClient, GeminiConfig, OpenAiClient, OpenAiConfig, Provider};
use fintel_store::Store;
use fintel_time::SharedClock;
use fintel_workflows::Registry;

use crate::config::{Config, ProviderKind};
use crate::exit::{config_problem, usage};

pub struct App {
    pub config: Config,
    pub clock: SharedClock,
    /// The model's `outputTokenLimit`, once the pre-flight lookup has answered.
    pub model_output_limit: std::sync::OnceLock<u64>,
    /// The model pre-flight chose from the provider's list when none was configured.
    pub chosen_model: std::sync::OnceLock<String>,
    /// The model's `inputTokenLimit`, once the pre-flight lookup has answered.
    pub model_input_limit: std::sync::OnceLock<u64>,
    /// What the server said about its context and slots at pre-flight.
    pub server_limits: std::sync::OnceLock<fintel_llm::ServerLimits>,
    /// Whether the model thinks, where the provider's model list says.
    pub model_thinks: std::sync::OnceLock<bool>,
}

impl App {
    /// Opens (creating if needed) the database in the data directory.
    pub fn open_store(&self) -> Result<Arc<Store>> {
        if std::fs::create_dir_all(&self.config.data_dir).is_err() {
            crate::doctor::require_writable_data_dir(&self.config.data_dir)?;
        }
        match Store::open(&self.config.db_path()) {
            Ok(store) => Ok(Arc::new(store)),
            Err(e) => {
                // A read-only directory shows up here as an SQLite error; say what it is.
                crate::doctor::require_writable_data_dir(&self.config.data_dir)?;
                Err(e.into())
            }
        }
    }

    /// Refuses to start work in a data directory fintel cannot write (exit 4, the doctor's
    /// explanation), before anything is fetched or created.
    pub fn require_writable(&self) -> Result<()> {
        crate::doctor::require_writable_data_dir(&self.config.data_dir)
    }

    /// The database if it exists, without creating anything.
    pub fn existing_store(&self) -> Result<Option<Arc<Store>>> {
        let path = self.config.db_path();
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Store::open(&path)?)))
    }

    /// The SEC client; without a User-Agent this is a configuration problem (exit 4).
    pub fn edgar(&self) -> Result<EdgarClient> {
        let c = &self.config;
        let config = EdgarConfig {
            user_agent: c.sec_user_agent.clone(),
            www_url: c.sec_www_url.clone(),
            data_url: c.sec_data_url.clone(),
            cache_dir: c.cache_dir(),
            requests_per_second: c.sec_requests_per_second,
        };
        EdgarClient::new(config, self.clock.clone()).map_err(|e| match e {
            fintel_edgar::EdgarError::MissingUserAgent { .. } => config_problem(e.to_string()),
            e => usage(e.to_string()),
        })
    }

    /// The model provider.
    pub fn provider(&self) -> Result<Arc<dyn Provider>> {
        let c = &self.config;
        Ok(match c.provider {
            ProviderKind::Gemini => Arc::new(
                GeminiClient::new(GeminiConfig {
                    base_url: c.gemini_url.clone(),
                    timeout: c.request_timeout,
                    ..GeminiConfig::default()
                })
                .map_err(|e| usage(e.to_string()))?,
            ),
            ProviderKind::OpenAi => Arc::new(
                OpenAiClient::new(OpenAiConfig {
                    base_url: c.openai_url.clone(),
                    timeout: c.request_timeout,
                    ..OpenAiConfig::default()
                })
                .map_err(|e| usage(e.to_string()))?
                .with_clock(self.clock.clone()),
            ),
        })
    }

    /// Built-in and custom analysis types; a custom file that cannot be used is named on
    /// stderr with its problem (only its type is missing).
    pub fn registry(&self) -> Result<Registry> {
        let registry = self.registry_quietly()?;
        for problem in registry.unusable_files() {
            crate::pipes::err(&format!("warning: {problem}\n"));
        }
        Ok(registry)
    }

    /// [`App::registry`] without the warnings about unusable files.
    pub fn registry_quietly(&self) -> Result<Registry> {
        Ok(Registry::load(&[self.config.workflows_dir()])?)
    }

    pub fn pool(&self) -> Arc<KeyPool> {
        Arc::new(KeyPool::new(
            self.config.buckets.clone(),
            self.config.reset_buffer,
        ))
    }

    /// The disk check and the daily maintenance of a batch run.
    pub fn upkeep(&self) -> Upkeep {
        Upkeep {
            data_dir: self.config.data_dir.clone(),
            free_space: Arc::new(fintel_store::SystemFreeSpace),
            min_free_bytes: self.config.min_free_disk_bytes,
            maintenance: Some(MaintenancePlan {
                backups_dir: self.config.backups_dir(),
                retention: self.config.backup_retention,
            }),
        }
    }

    /// The model of this run: the configured one, else the one pre-flight chose.
    pub fn model(&self) -> Option<&str> {
        self.config
            .model
            .as_deref()
            .or_else(|| self.chosen_model.get().map(String::as_str))
    }

    /// The settings of a run analysing with `model` (a batch's own model).
    pub fn engine_settings(&self, model: &str) -> EngineSettings {
        let c = &self.config;
        let max_output_tokens = fintel_engine::settings::output_budget(
            c.max_output_tokens,
            self.model_output_limit.get().copied(),
        );
        let server = self
            .server_limits
            .get()
            .copied()
            .unwrap_or(match c.provider {
                ProviderKind::Gemini => fintel_llm::ServerLimits {
                    kind: fintel_llm::ServerKind::Gemini,
                    ..Default::default()
                },
                ProviderKind::OpenAi => fintel_llm::ServerLimits {
                    output_in_context: true,
                    ..Default::default()
                },
            });
        let from_server = fintel_engine::settings::server_settings(
            c.context_tokens,
            c.concurrency_configured,
            self.model_input_limit.get().copied(),
            &server,
        );
        EngineSettings {
            concurrency: from_server.concurrency,
            grace: c.grace,
            model: model.to_string(),
            context_tokens: from_server.context_tokens,
            output_in_context: from_server.output_in_context,
            truncation_advice: from_server.truncation_advice,
            request_timeout: Some(c.request_timeout),
            server_kind: match c.provider {
                ProviderKind::Gemini => fintel_llm::ServerKind::Gemini,
                ProviderKind::OpenAi => server.kind,
            },
            model_thinks: self.model_thinks.get().copied(),
            user_params: fintel_llm::params::UserParams {
                temperature: c.temperature,
                thinking: c.thinking.clone(),
                seed: c.seed,
            },
            max_output_tokens,
            ..EngineSettings::default()
        }
    }
}

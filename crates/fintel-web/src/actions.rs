//! The only two writes: request a stop of a batch, re-queue its failed tasks. Each is a POST
//! that must carry the per-run token, and opens a writable connection for its one statement.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::pages::path_segment;
use crate::{PageError, Shared};

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    token: Option<String>,
}

fn check_token(
    state: &Shared,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<(), PageError> {
    let token = match form {
        Ok(Form(f)) => f.token,
        Err(_) => None,
    };
    match token {
        Some(t) if state.config.token.matches(&t) => Ok(()),
        Some(_) => Err(PageError::Forbidden(
            "the action's token is wrong: it changes each time `fintel web` starts; reload the \
             page and try again, or use the token printed on the terminal"
                .into(),
        )),
        None => Err(PageError::Forbidden(
            "actions need the token printed on the terminal by `fintel web` (the dashboard's own \
             forms carry it); this request had none"
                .into(),
        )),
    }
}

/// Asks the process running the batch to drain and stop, as SIGTERM does.
pub(crate) async fn stop(
    State(state): State<Shared>,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, PageError> {
    check_token(&state, form)?;
    let now = state.config.clock.now();
    let batch_id = state
        .write(move |store| {
            let batch = store.find_batch(&id)?;
            if !batch.state.is_incomplete() {
                return Err(PageError::Conflict(format!(
                    "batch {} is {}: there is nothing to stop",
                    batch.id,
                    batch.state.as_str()
                )));
            }
            store.request_stop(&batch.id, true)?;
            store.log_event(
                Some(&batch.id),
                now,
                "info",
                "stop requested from the dashboard",
            )?;
            Ok(batch.id)
        })
        .await?;
    tracing::info!(batch = %batch_id, "stop requested from the dashboard");
    Ok(Redirect::to(&format!("/batches/{}?notice=stop", path_segment(&batch_id))).into_response())
}

/// Puts the batch's failed tasks back to pending with fresh attempts.
pub(crate) async fn requeue_failed(
    State(state): State<Shared>,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, PageError> {
    check_token(&state, form)?;
    let now = state.config.clock.now();
    let (batch_id, n) = state
        .write(move |store| {
            let batch = store.find_batch(&id)?;
            if batch.state == fintel_store::BatchState::Cancelled {
                return Err(PageError::Conflict(format!(
                    "batch {} was cancelled; its tasks cannot be re-queued",
                    batch.id
                )));
            }
            let n = store.requeue_failed(&batch.id, now)?;
            store.log_event(
                Some(&batch.id),
                now,
                "info",
                &format!("{n} failed task(s) re-queued from the dashboard"),
            )?;
            Ok((batch.id, n))
        })
        .await?;
    tracing::info!(batch = %batch_id, tasks = n, "failed tasks re-queued from the dashboard");
    Ok(Redirect::to(&format!(
        "/batches/{}?notice=requeued&n={n}",
        path_segment(&batch_id)
    ))
    .into_response())
}

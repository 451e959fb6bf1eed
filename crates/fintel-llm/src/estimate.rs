//! A quick token estimate for a request, for planning and for fitting a document before any
//! call is made. It is deliberately simple: the provider's own count (`count_tokens`) is exact
//! and should be preferred when a decision is close.

use crate::types::GenerateRequest;

/// Characters per token assumed by the estimate: Google's documented rule of thumb for Gemini
/// ("a token is about 4 characters"). SEC filings with many numbers and tables tokenize
/// somewhat denser, so callers should keep a margin.
pub const CHARS_PER_TOKEN: u64 = 4;

/// Estimated tokens of a text: its characters (not bytes) divided by [`CHARS_PER_TOKEN`],
/// rounded up.
pub fn estimate_text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(CHARS_PER_TOKEN)
}

/// Estimated input tokens of a whole request: system instruction, every turn, and the response
/// schema (providers add it to the prompt when they enforce it).
pub fn estimate_request_tokens(request: &GenerateRequest) -> u64 {
    let system = request
        .system_instruction
        .as_deref()
        .map(estimate_text_tokens)
        .unwrap_or(0);
    let turns: u64 = request
        .turns
        .iter()
        .map(|t| estimate_text_tokens(&t.text))
        .sum();
    let schema = estimate_text_tokens(&request.response_schema.to_string());
    system + turns + schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Role, Thinking, Turn};
    use serde_json::json;

    #[test]
    fn counts_characters_not_bytes_and_rounds_up() {
        assert_eq!(estimate_text_tokens(""), 0);
        assert_eq!(estimate_text_tokens("abcd"), 1);
        assert_eq!(estimate_text_tokens("abcde"), 2);
        // Four two-byte characters are one token, not two.
        assert_eq!(estimate_text_tokens("éééé"), 1);
    }

    #[test]
    fn a_request_counts_system_turns_and_schema() {
        let request = GenerateRequest {
            model: "m".into(),
            system_instruction: Some("x".repeat(40)),
            turns: vec![
                Turn {
                    role: Role::User,
                    text: "y".repeat(400),
                },
                Turn {
                    role: Role::Model,
                    text: "z".repeat(4),
                },
            ],
            response_schema: json!({"type": "object"}),
            temperature: None,
            max_output_tokens: None,
            thinking: Thinking::ProviderDefault,
            seed: None,
            output_field: None,
        };
        // 10 + 100 + 1 + ceil(17 / 4) = 116 (the schema serialises to 17 characters).
        assert_eq!(estimate_request_tokens(&request), 116);
    }
}

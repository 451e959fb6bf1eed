//! The token budget of a request, and what a server's answer reveals about its real context.
//! Pure decisions, table-tested; the runner carries them out.
//!
//! * [`plan`]: how many tokens the document may take and how many output tokens to ask for,
//!   from the context (configured, else what the server says, else learned from its refusals),
//!   the prompt and schema, and the output wanted. Where the output shares the context with the
//!   prompt (every OpenAI-compatible server: vLLM and llama.cpp refuse or cut a request whose
//!   prompt plus `max_tokens` exceed it), the output budget is capped so that a useful document
//!   still fits; a context too small for any useful answer is an error saying how large it
//!   must be.
//! * [`truncation`]: whether an answer's reported prompt tokens show that the server read far
//!   fewer tokens than were sent (Ollama's default silently keeps the start and the tail of an
//!   over-long prompt), and the context it really used.

/// The smallest document worth analysing, in tokens (about two pages of a filing).
pub const MIN_DOCUMENT_TOKENS: u64 = 500;
/// The smallest output budget that holds a useful structured answer.
pub const MIN_OUTPUT_TOKENS: u32 = 256;
/// Of the room left for the document, this share is used; the rest is the margin for the
/// estimate's error (a dense filing has more tokens than characters / 4).
const DOCUMENT_SHARE_PERCENT: u64 = 90;
/// Where the output shares the context, it takes at most this share of what the prompt and
/// schema leave (but at least [`MIN_OUTPUT_TOKENS`]), so the document keeps most of it.
const OUTPUT_SHARE_DIVISOR: u64 = 4;

/// What a request's budget is planned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetInput {
    /// The context of one request, in tokens.
    pub context_tokens: u64,
    /// Whether the output is generated inside that context.
    pub output_in_context: bool,
    /// The output budget wanted (configured, or the model's output limit).
    pub wanted_output: u32,
    /// The prompt and response schema of the request, without the document.
    pub overhead_tokens: u64,
    /// The largest request a bucket accepts per minute (`u64::MAX` when unlimited).
    pub request_cap_tokens: u64,
    /// The output a cut-off answer showed is needed at least (0: none), taken from the
    /// document's share where the output shares the context ([`after_length`]).
    pub output_floor: u32,
}

/// A request's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Tokens the document may take (the estimate's margin already taken off).
    pub document_tokens: u64,
    /// The output limit to send.
    pub max_output_tokens: u32,
}

/// The context cannot hold a useful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a context of {context_tokens} tokens is too small for this analysis: its prompt and schema \
     take {overhead_tokens} tokens, and a useful answer needs a context of at least \
     {needed_tokens} tokens"
)]
pub struct ContextTooSmall {
    pub context_tokens: u64,
    pub overhead_tokens: u64,
    pub needed_tokens: u64,
}

/// The budget of a request (see the module documentation).
pub fn plan(input: &BudgetInput) -> Result<Budget, ContextTooSmall> {
    let min_output = if input.output_in_context {
        u64::from(MIN_OUTPUT_TOKENS.min(input.wanted_output.max(1)))
    } else {
        0
    };
    // The document's minimum, before the margin is taken off.
    let min_document_room = MIN_DOCUMENT_TOKENS * 100 / DOCUMENT_SHARE_PERCENT + 1;
    let needed = input.overhead_tokens + min_document_room + min_output;
    let too_small = ContextTooSmall {
        context_tokens: input.context_tokens,
        overhead_tokens: input.overhead_tokens,
        needed_tokens: needed,
    };
    let room = input.context_tokens.saturating_sub(input.overhead_tokens);
    if input.context_tokens < needed {
        return Err(too_small);
    }
    let max_output_tokens = if input.output_in_context {
        let share = (room / OUTPUT_SHARE_DIVISOR).max(min_output);
        let cap = room - min_document_room;
        let wanted = u64::from(input.wanted_output);
        let floor = u64::from(input.output_floor).min(wanted);
        wanted.min(share).max(floor).min(cap) as u32
    } else {
        input.wanted_output
    };
    let in_context = if input.output_in_context {
        room - u64::from(max_output_tokens)
    } else {
        room
    };
    let by_cap = input
        .request_cap_tokens
        .saturating_sub(input.overhead_tokens);
    let document_room = in_context.min(by_cap);
    if document_room < min_document_room {
        // Only the per-minute cap can bring it here: the context alone was checked above.
        return Err(ContextTooSmall {
            context_tokens: input.context_tokens.min(input.request_cap_tokens),
            ..too_small
        });
    }
    Ok(Budget {
        document_tokens: document_room * DOCUMENT_SHARE_PERCENT / 100,
        max_output_tokens,
    })
}

/// After an answer was cut off at `cut_at` output tokens (`finish_reason: "length"`), on a
/// server where the output shares the context: the output floor that doubles the output
/// budget, taking room from the document, or `None` when the output cannot grow (the
/// context, or the output limit wanted, has no more room), so the request is never resent
/// as it was.
pub fn after_length(cut_at: u32, input: &BudgetInput) -> Option<u32> {
    let floor = cut_at.saturating_mul(2).max(input.output_floor);
    let grown = plan(&BudgetInput {
        output_floor: floor,
        ..*input
    })
    .ok()?;
    (grown.max_output_tokens > cut_at).then_some(floor)
}

/// Below this share of the tokens sent, a reported prompt is truncated when the count sent is
/// only the characters / 4 estimate: real tokenizers land between about 0.7 and 1.6 times the
/// estimate on filings, never near half of it.
const ESTIMATE_TRUNCATION_PERCENT: u64 = 50;
/// Below this share of the server's own count (its tokenizer, so only the chat template's few
/// tokens differ), a reported prompt is truncated.
const MEASURED_TRUNCATION_PERCENT: u64 = 90;
/// Requests this small are never judged: the chat template's own tokens weigh too much.
const SMALLEST_JUDGED_TOKENS: u64 = 400;

/// Whether the server read far fewer prompt tokens than were sent: `Some(tokens it read)`,
/// which is the context it really used, or `None` when the answer may be kept. `sent` is the
/// server's own count when `measured`, else the estimate; `reported` is the answer's
/// `prompt_tokens` (0 when the server gave none, which proves nothing); `context` the context
/// the request was fitted to. A prompt that filled the whole context was cut to it, whatever
/// the estimate said (a tokenizer denser than the estimate hides the cut from the ratio).
pub fn truncation(sent: u64, measured: bool, reported: u64, context: u64) -> Option<u64> {
    if reported == 0 || sent < SMALLEST_JUDGED_TOKENS {
        return None;
    }
    if reported >= context {
        return Some(reported);
    }
    let percent = if measured {
        MEASURED_TRUNCATION_PERCENT
    } else {
        ESTIMATE_TRUNCATION_PERCENT
    };
    (reported.saturating_mul(100) < sent.saturating_mul(percent)).then_some(reported)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(context: u64, in_context: bool, wanted: u32, overhead: u64) -> BudgetInput {
        BudgetInput {
            context_tokens: context,
            output_in_context: in_context,
            wanted_output: wanted,
            overhead_tokens: overhead,
            request_cap_tokens: u64::MAX,
            output_floor: 0,
        }
    }

    #[test]
    fn budgets_by_context_output_and_overhead() {
        // (context, output in context, wanted output, overhead) -> (document, output)
        type Case = ((u64, bool, u32, u64), (u64, u32));
        let cases: [Case; 7] = [
            // Gemini: the output has its own limit; the document takes 90% of the rest.
            ((1_048_576, false, 65_536, 2_000), (941_918, 65_536)),
            // vLLM 32k with fintel's 16k output: the output is capped to a quarter.
            ((32_768, true, 16_384, 2_000), (20_768, 7_692)),
            // A large context keeps the wanted output.
            ((131_072, true, 16_384, 2_000), (101_419, 16_384)),
            // llama.cpp at 2,048 tokens: a quarter of what the prompt leaves for the output.
            ((2_048, true, 16_384, 600), (977, 362)),
            // A small wanted output is kept as asked.
            ((8_192, true, 300, 600), (6_562, 300)),
            // Just large enough: the minimum document and output.
            ((600 + 556 + 256, true, 16_384, 600), (500, 256)),
            ((600 + 556, false, 8_192, 600), (500, 8_192)),
        ];
        for ((context, in_context, wanted, overhead), (document, output)) in cases {
            let got = plan(&input(context, in_context, wanted, overhead)).unwrap();
            assert_eq!(
                (got.document_tokens, got.max_output_tokens),
                (document, output),
                "{context} {in_context} {wanted} {overhead}"
            );
            // Prompt, document and output always fit the context together.
            if in_context {
                assert!(
                    overhead + got.document_tokens + u64::from(got.max_output_tokens) <= context
                );
            }
        }
    }

    #[test]
    fn a_context_too_small_says_how_large_it_must_be() {
        let err = plan(&input(1_000, true, 16_384, 600)).unwrap_err();
        assert_eq!(err.needed_tokens, 600 + 556 + 256);
        assert!(err.to_string().contains("at least 1412 tokens"), "{err}");
        assert!(plan(&input(1_411, true, 16_384, 600)).is_err());
        assert!(plan(&input(1_412, true, 16_384, 600)).is_ok());
        // Overhead alone over the context.
        assert!(plan(&input(500, false, 100, 600)).is_err());
        // A per-minute cap too small for a document.
        let capped = BudgetInput {
            request_cap_tokens: 700,
            ..input(1_048_576, false, 8_192, 600)
        };
        assert_eq!(plan(&capped).unwrap_err().context_tokens, 700);
    }

    #[test]
    fn the_per_minute_cap_limits_the_document_not_the_output() {
        let capped = BudgetInput {
            request_cap_tokens: 250_000,
            ..input(1_048_576, false, 65_536, 2_000)
        };
        assert_eq!(
            plan(&capped).unwrap(),
            Budget {
                document_tokens: 223_200,
                max_output_tokens: 65_536
            }
        );
    }

    #[test]
    fn a_cut_off_answer_doubles_the_output_from_the_documents_share() {
        // llama.cpp at 4,096 tokens: the output was planned at a quarter of the room.
        let base = input(4_096, true, 16_384, 1_000);
        assert_eq!(plan(&base).unwrap().max_output_tokens, 774);
        let floor = after_length(774, &base).unwrap();
        assert_eq!(floor, 1_548);
        let grown = plan(&BudgetInput {
            output_floor: floor,
            ..base
        })
        .unwrap();
        assert_eq!(grown.max_output_tokens, 1_548);
        assert!(grown.document_tokens < plan(&base).unwrap().document_tokens);
        // Doubling again hits the minimum document: the output grows to what is left.
        let again = BudgetInput {
            output_floor: floor,
            ..base
        };
        assert_eq!(after_length(1_548, &again), Some(3_096));
        let most = plan(&BudgetInput {
            output_floor: 3_096,
            ..base
        })
        .unwrap();
        assert_eq!((most.max_output_tokens, most.document_tokens), (2_540, 500));
        // No more room: never the same request again.
        let full = BudgetInput {
            output_floor: 3_096,
            ..base
        };
        assert_eq!(after_length(2_540, &full), None);
        // The output limit wanted (the model's, or the user's) is never exceeded.
        assert_eq!(after_length(300, &input(32_768, true, 300, 1_000)), None);
    }

    #[test]
    fn truncation_is_judged_against_the_count_sent() {
        // (sent, measured, reported) -> context really used, for a 1M context
        let cases: [((u64, bool, u64), Option<u64>); 9] = [
            // Ollama kept 2,048 of a 90,000-token filing.
            ((90_000, false, 2_048), Some(2_048)),
            ((90_000, true, 2_048), Some(2_048)),
            // A lighter tokenizer than 4 characters a token is not truncation...
            ((10_000, false, 7_000), None),
            ((10_000, false, 5_000), None),
            // ...but under half of the estimate is.
            ((10_000, false, 4_999), Some(4_999)),
            // By the server's own count even 15% missing is truncation.
            ((10_000, true, 8_500), Some(8_500)),
            ((10_000, true, 9_500), None),
            // No usage reported, or a request too small to judge.
            ((90_000, false, 0), None),
            ((300, false, 10), None),
        ];
        for ((sent, measured, reported), expected) in cases {
            assert_eq!(
                truncation(sent, measured, reported, 1_048_576),
                expected,
                "{sent} {measured} {reported}"
            );
        }
        // A prompt that filled the context it was fitted to was cut, even when the server's
        // tokenizer is so dense that it read more than the estimate.
        assert_eq!(truncation(2_800, false, 4_096, 4_096), Some(4_096));
        assert_eq!(truncation(2_800, false, 4_000, 4_096), None);
    }
}

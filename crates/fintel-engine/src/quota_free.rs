//! Which work needs quota, and whether a batch runs now or waits for the keys: a pure decision,
//! table-tested here. Work that needs no model request (a company's resolution, a year or an
//! aggregate whose result is stored already, an analysis without a model such as
//! `financials`, an aggregate left with too few years to ask about) never waits for the quota
//! reset; the runner marks such tasks as needing no model, so they are claimed while the keys
//! are spent.

/// A pending task, as far as quota is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Resolving a company's filings: SEC only.
    Resolve,
    /// One fiscal year; `stored` when its result key has a stored result.
    Year { stored: bool },
    /// The multi-year aggregate of a company whose years are all done: `stored` when its
    /// result key has a stored result, `enough_years` when it has the years it needs (else it
    /// is skipped without asking the model).
    Aggregate { stored: bool, enough_years: bool },
    /// An aggregate whose company still has years to run: what it will need is not known yet.
    AggregateAhead,
}

/// What the batch's settings say about every task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkContext {
    /// The analysis asks a model at all (`financials`, for one, does not).
    pub analysis_needs_model: bool,
    /// `--force`: stored results are redone, so they need the model again.
    pub force: bool,
}

/// Whether `work` needs a model request, hence quota.
pub fn needs_quota(work: Work, ctx: WorkContext) -> bool {
    if !ctx.analysis_needs_model {
        return false;
    }
    match work {
        Work::Resolve => false,
        Work::Year { stored } => ctx.force || !stored,
        Work::Aggregate {
            stored,
            enough_years,
        } => enough_years && (ctx.force || !stored),
        // Claimed only once its years are done; until then it counts as model work.
        Work::AggregateAhead => true,
    }
}

/// What a batch with pending work does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Some pending work can go now.
    Run,
    /// Every pending task needs quota and no key can send: wait for the keys.
    WaitForQuota,
    /// Nothing is pending.
    Nothing,
}

/// The batch's next step from its pending work and whether some key can send now.
pub fn next_step(pending: &[Work], ctx: WorkContext, keys_can_send: bool) -> Step {
    if pending.is_empty() {
        return Step::Nothing;
    }
    if keys_can_send || pending.iter().any(|w| !needs_quota(*w, ctx)) {
        Step::Run
    } else {
        Step::WaitForQuota
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: WorkContext = WorkContext {
        analysis_needs_model: true,
        force: false,
    };
    const FORCED: WorkContext = WorkContext {
        analysis_needs_model: true,
        force: true,
    };
    const NO_MODEL: WorkContext = WorkContext {
        analysis_needs_model: false,
        force: false,
    };

    #[test]
    fn work_that_needs_no_model_request_never_waits_for_the_keys() {
        use Work::*;
        let stored = Year { stored: true };
        let fresh = Year { stored: false };
        let agg_stored = Aggregate {
            stored: true,
            enough_years: true,
        };
        let agg_fresh = Aggregate {
            stored: false,
            enough_years: true,
        };
        let agg_short = Aggregate {
            stored: false,
            enough_years: false,
        };
        #[rustfmt::skip]
        let cases: &[(&str, &[Work], WorkContext, bool, Step)] = &[
            ("nothing pending", &[], MODEL, false, Step::Nothing),
            ("every year stored, keys spent", &[stored, stored], MODEL, false, Step::Run),
            ("a resolution, keys spent", &[Resolve, fresh], MODEL, false, Step::Run),
            ("years to ask, keys spent", &[fresh, fresh], MODEL, false, Step::WaitForQuota),
            ("years to ask, keys free", &[fresh], MODEL, true, Step::Run),
            ("one stored among new ones", &[fresh, stored], MODEL, false, Step::Run),
            ("a stored aggregate", &[agg_stored], MODEL, false, Step::Run),
            ("an aggregate to ask", &[agg_fresh], MODEL, false, Step::WaitForQuota),
            ("an aggregate with too few years is skipped", &[agg_short], MODEL, false, Step::Run),
            ("an aggregate still ahead", &[AggregateAhead], MODEL, false, Step::WaitForQuota),
            ("forced: stored years are asked again", &[stored, agg_stored], FORCED, false, Step::WaitForQuota),
            ("forced, keys free", &[stored], FORCED, true, Step::Run),
            ("no model at all (financials)", &[fresh, agg_fresh, AggregateAhead], NO_MODEL, false, Step::Run),
        ];
        for (what, pending, ctx, keys, want) in cases {
            assert_eq!(next_step(pending, *ctx, *keys), *want, "{what}");
        }
    }

    #[test]
    fn only_years_and_aggregates_to_ask_need_quota() {
        assert!(!needs_quota(Work::Resolve, FORCED));
        assert!(needs_quota(Work::Year { stored: false }, MODEL));
        assert!(!needs_quota(Work::Year { stored: true }, MODEL));
        assert!(needs_quota(Work::Year { stored: true }, FORCED));
        assert!(!needs_quota(Work::Year { stored: false }, NO_MODEL));
    }
}

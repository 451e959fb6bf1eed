//! Event-study backtests of stored verdicts: each position opens at the first close after
//! SEC accepted its filing, is held for a number of trading days, and is measured against a
//! benchmark; the legs and their spread get means, hit rates and t-statistics clustered by
//! company.

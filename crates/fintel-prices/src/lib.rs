//! Daily price files read for backtests: the long form (`ticker` or `cik`, `date`,
//! `adj_close` or `close`, optional `delisting_return`) and the wide form (a `date` column and
//! one column per ticker), every bad row reported with its line number.

//! Overload back-off: an AIMD (additive increase, multiplicative decrease) limit on the queries
//! in flight to one resolver. Pure logic; the transport holds one per resolver and makes
//! queries wait for a permit under its current limit.
//!
//! Why: a loopback Unbound thread given 1,000 queries at once drops some and answers others
//! SERVFAIL (its request list is full, its upstream queries time out), failures a gentler
//! client does not see; a measurement must not manufacture them. The signals are those a
//! resolver gives when overloaded: an attempt that timed out, or a SERVFAIL that does not say
//! DNSSEC validation failed. Some of both are normal on the real Internet (dead authorities,
//! broken delegations), whatever the load, so one signal does not shrink the limit: only more
//! than [`OVERLOAD_PERCENT`] % of a window's queries (and at least [`MIN_OVERLOAD_SIGNALS`]).
//!
//! Rules (the TCP congestion-avoidance pattern, with DNS's late signal in mind):
//! - The limit starts at the ceiling (the configured concurrency): nothing changes until the
//!   resolver shows overload, so a healthy resolver runs as fast as before.
//! - A window is `limit` results of queries sent under the current limit. A window that ends
//!   without overload raises the limit by 1 (additive increase), up to the ceiling.
//! - Overload in a window multiplies the limit by [`DECREASE_NUMERATOR`]/[`DECREASE_DENOMINATOR`]
//!   (3/4), down to the floor, and starts a new generation: results of queries sent before it
//!   are ignored, since they say how the resolver coped with the old limit (this is TCP's
//!   "once per round trip", and it stops one burst of timeouts from halving the limit many
//!   times over). 3/4 rather than TCP's 1/2 because the signal comes late (an attempt times out
//!   after 2 s), so a few decreases in a row are likely before the first effects show.
//! - The floor is [`FLOOR`] (or the ceiling, if lower): a low-concurrency client, which
//!   the benchmark showed gets no self-inflicted failures, and enough to keep a scan
//!   moving against a resolver that is down.

/// Lowest limit per resolver (unless the ceiling is lower).
pub(crate) const FLOOR: usize = 16;
/// Overload: more than this share (per cent) of a window's results were overload signals.
pub(crate) const OVERLOAD_PERCENT: usize = 2;
/// ... and at least this many signals (small windows would otherwise react to one timeout).
pub(crate) const MIN_OVERLOAD_SIGNALS: usize = 4;
/// Multiplicative decrease: `limit * 3 / 4`.
pub(crate) const DECREASE_NUMERATOR: usize = 3;
/// See [`DECREASE_NUMERATOR`].
pub(crate) const DECREASE_DENOMINATOR: usize = 4;

/// What one attempt says about the resolver's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// An answer (any rcode but an overload SERVFAIL).
    Success,
    /// A timeout, or a SERVFAIL that is not a DNSSEC failure.
    Overload,
    /// Says nothing about load (a local error, ICMP unreachable, a garbled reply).
    Neutral,
}

/// The controller of one resolver.
#[derive(Debug, Clone)]
pub(crate) struct Aimd {
    floor: usize,
    ceiling: usize,
    limit: usize,
    generation: u64,
    window_results: usize,
    window_overloads: usize,
    decreases: u64,
}

impl Aimd {
    /// A controller between [`FLOOR`] and `ceiling` (at least 1), starting at the ceiling.
    pub(crate) fn new(ceiling: usize) -> Aimd {
        let ceiling = ceiling.max(1);
        Aimd {
            floor: FLOOR.min(ceiling),
            ceiling,
            limit: ceiling,
            generation: 0,
            window_results: 0,
            window_overloads: 0,
            decreases: 0,
        }
    }

    /// Queries allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The generation a query sent now belongs to (pass it back to [`Aimd::record`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Multiplicative decreases so far.
    pub(crate) fn decreases(&self) -> u64 {
        self.decreases
    }

    /// Records the result of a query sent in generation `sent_in`; returns the new limit.
    pub(crate) fn record(&mut self, sent_in: u64, signal: Signal) -> usize {
        if sent_in != self.generation || signal == Signal::Neutral {
            return self.limit;
        }
        self.window_results += 1;
        if signal == Signal::Overload {
            self.window_overloads += 1;
            if self.window_overloads >= MIN_OVERLOAD_SIGNALS
                && self.window_overloads * 100 > OVERLOAD_PERCENT * self.limit
            {
                self.limit = (self.limit * DECREASE_NUMERATOR / DECREASE_DENOMINATOR)
                    .clamp(self.floor, self.ceiling);
                self.generation += 1;
                self.decreases += 1;
                self.window_results = 0;
                self.window_overloads = 0;
                return self.limit;
            }
        }
        if self.window_results >= self.limit {
            self.limit = (self.limit + 1).min(self.ceiling);
            self.window_results = 0;
            self.window_overloads = 0;
        }
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(a: &mut Aimd, n: usize, s: Signal) {
        for _ in 0..n {
            let g = a.generation();
            a.record(g, s);
        }
    }

    #[test]
    fn starts_at_the_ceiling_and_stays_there_on_success() {
        let mut a = Aimd::new(1000);
        assert_eq!(a.limit(), 1000);
        feed(&mut a, 10_000, Signal::Success);
        assert_eq!(a.limit(), 1000);
        assert_eq!(a.decreases(), 0);
    }

    #[test]
    fn background_failures_below_the_threshold_do_not_back_off() {
        // 1 % timeouts, as dead authorities give whatever the load: no decrease.
        let mut a = Aimd::new(1000);
        for _ in 0..100 {
            feed(&mut a, 99, Signal::Success);
            feed(&mut a, 1, Signal::Overload);
        }
        assert_eq!(a.limit(), 1000);
        assert_eq!(a.decreases(), 0);
    }

    #[test]
    fn overload_decreases_by_a_quarter_once_per_generation() {
        let mut a = Aimd::new(1000);
        let old = a.generation();
        // 21 signals are more than 2 % of 1,000.
        feed(&mut a, 21, Signal::Overload);
        assert_eq!(a.limit(), 750);
        assert_eq!(a.decreases(), 1);
        // The rest of the burst, from queries sent under the old limit, is ignored.
        for _ in 0..500 {
            a.record(old, Signal::Overload);
        }
        assert_eq!(a.limit(), 750);
        // Overload under the new limit decreases again: more than 2 % of 750 is 16.
        feed(&mut a, 16, Signal::Overload);
        assert_eq!(a.limit(), 562);
    }

    #[test]
    fn never_below_the_floor_nor_above_the_ceiling() {
        let mut a = Aimd::new(1000);
        for _ in 0..100 {
            feed(&mut a, 100, Signal::Overload);
        }
        assert_eq!(a.limit(), FLOOR);
        let mut small = Aimd::new(4);
        feed(&mut small, 100, Signal::Overload);
        assert_eq!(small.limit(), 4, "the ceiling wins over the floor");
        feed(&mut small, 100, Signal::Success);
        assert_eq!(small.limit(), 4);
        assert_eq!(Aimd::new(0).limit(), 1);
    }

    #[test]
    fn recovers_additively_one_per_window() {
        let mut a = Aimd::new(1000);
        feed(&mut a, 21, Signal::Overload);
        assert_eq!(a.limit(), 750);
        feed(&mut a, 750, Signal::Success);
        assert_eq!(a.limit(), 751);
        feed(&mut a, 751, Signal::Success);
        assert_eq!(a.limit(), 752);
        feed(&mut a, 100, Signal::Success);
        assert_eq!(a.limit(), 752, "a partial window does not count");
    }

    #[test]
    fn few_signals_in_a_small_window_are_tolerated() {
        // Ceiling 50: 2 % is one query, but fewer than 4 signals never decrease.
        let mut a = Aimd::new(50);
        feed(&mut a, 3, Signal::Overload);
        assert_eq!(a.limit(), 50);
        feed(&mut a, 1, Signal::Overload);
        assert_eq!(a.limit(), 37);
    }

    #[test]
    fn neutral_results_count_for_nothing() {
        let mut a = Aimd::new(100);
        feed(&mut a, 1000, Signal::Neutral);
        assert_eq!(a.limit(), 100);
        assert_eq!(a.decreases(), 0);
    }
}

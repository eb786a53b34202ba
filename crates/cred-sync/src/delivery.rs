//! How the running gateway takes what a sync wrote, and whether it must be nudged or restarted
//! for it (docs/ARCHITECTURE.md, "Delivery"; the real gateway's behaviour is pinned in
//! tests/openclaw-gateway and docs/UPSTREAM.md).
//!
//! - OpenClaw's store is read on every lookup: a written profile reaches the running gateway
//!   without a restart (the first request after an unannounced write may still carry the old,
//!   still valid token).
//! - 2026.9.6's `paste-token` also tells the running gateway (`models.authRefresh`), so the very
//!   next request carries the new token; when it cannot, `openclaw secrets reload` can.
//! - A gateway whose turn already failed for lack of a credential (the copy it held expired)
//!   stops looking: an unannounced write is then never seen until it is nudged or restarted.
//! - `ANTHROPIC_OAUTH_TOKEN` (`.env`, drop-ins) is read at start only, and a usable store profile
//!   wins over it: writing it needs a restart only when nothing else delivers the token.

use std::fmt;

/// How one written target reaches the running gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The gateway was told (paste-token's refresh call, or `openclaw secrets reload`): its next
    /// request carries the token.
    Told,
    /// A store the gateway re-reads on every lookup, replacing a copy that was still valid: the
    /// next request but one carries the token at the latest.
    Live,
    /// A store the gateway re-reads, but the copy it replaced had expired or was missing, so the
    /// gateway may have stopped looking: it must be nudged (or restarted).
    NeedsNudge,
    /// Pasted into the store, but neither paste-token nor `secrets reload` could tell the
    /// gateway: only a restart is sure to reach it.
    Untold,
    /// Read when the gateway starts (`.env`, a drop-in; a cleared profile exposes the variable):
    /// a restart is needed only when no store target delivered the token.
    AtStart,
}

impl Delivery {
    /// The name in change lines (`"delivery"`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Delivery::Told => "told",
            Delivery::Live => "live",
            Delivery::NeedsNudge => "needs-nudge",
            Delivery::Untold => "untold",
            Delivery::AtStart => "at-start",
        }
    }

    /// A store write's delivery, judged by the copy it replaced: still valid at `now_ms` (the
    /// gateway is using it and looks again), or expired or missing (it may have stopped looking).
    pub(crate) fn of_store_write(replaced_expires_ms: Option<i64>, replaced_a_token: bool, now_ms: i64) -> Self {
        match replaced_expires_ms {
            Some(expires) if replaced_a_token && expires > now_ms => Delivery::Live,
            None if replaced_a_token => Delivery::Live,
            _ => Delivery::NeedsNudge,
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a batch of writes asks of the running gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GatewayAction {
    /// It has the token (or will on its next lookup): nothing to do.
    Nothing,
    /// It may have stopped looking at its store: the cheap nudge (2026.6.1: SIGUSR1, an
    /// in-process restart), or a restart when no nudge is configured.
    Nudge,
    /// Only a restart (or a container recreation) reaches it.
    Restart,
}

impl GatewayAction {
    /// The batch's action: a paste nobody could announce needs a restart; a store that may be
    /// unwatched needs a nudge; while a store target holds the token (written now, or already
    /// holding it), the variables' copies are the fallback for the next start, not a reason to
    /// restart; variables alone need a restart. `store_holds` says whether some store target
    /// succeeded in this sync (written, unchanged or a refused downgrade; not failed, not absent).
    pub(crate) fn of(deliveries: impl IntoIterator<Item = Delivery>, store_holds: bool) -> Self {
        let (mut nudge, mut untold, mut at_start) = (false, false, false);
        for d in deliveries {
            match d {
                Delivery::Told | Delivery::Live => {}
                Delivery::NeedsNudge => nudge = true,
                Delivery::Untold => untold = true,
                Delivery::AtStart => at_start = true,
            }
        }
        if untold {
            GatewayAction::Restart
        } else if nudge {
            GatewayAction::Nudge
        } else if at_start && !store_holds {
            GatewayAction::Restart
        } else {
            GatewayAction::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Delivery::{AtStart, Live, NeedsNudge, Told, Untold};
    use super::*;

    #[test]
    fn a_store_delivery_makes_the_variables_a_fallback_not_a_restart() {
        assert_eq!(GatewayAction::of([Told, AtStart], true), GatewayAction::Nothing);
        assert_eq!(GatewayAction::of([Live, AtStart, AtStart], true), GatewayAction::Nothing);
        assert_eq!(GatewayAction::of([Live], true), GatewayAction::Nothing);
    }

    #[test]
    fn variables_alone_need_a_restart() {
        assert_eq!(GatewayAction::of([AtStart], false), GatewayAction::Restart);
        assert_eq!(GatewayAction::of([AtStart, AtStart], false), GatewayAction::Restart);
    }

    /// Regression: the store refused an older token (a downgrade) while the `.env` and drop-in,
    /// which record no expiry, took it; with nothing written to the store, the batch looked
    /// "environment only" and restarted the gateway onto the older token.
    #[test]
    fn regression_variables_written_beside_a_store_that_holds_the_token_restarted_the_gateway() {
        assert_eq!(GatewayAction::of([AtStart, AtStart], true), GatewayAction::Nothing);
    }

    #[test]
    fn an_untold_paste_restarts_and_an_unwatched_store_is_nudged() {
        assert_eq!(GatewayAction::of([Untold, AtStart], false), GatewayAction::Restart);
        assert_eq!(GatewayAction::of([Untold, NeedsNudge], true), GatewayAction::Restart);
        assert_eq!(GatewayAction::of([NeedsNudge, Live, AtStart], true), GatewayAction::Nudge);
    }

    #[test]
    fn nothing_written_asks_nothing() {
        assert_eq!(GatewayAction::of([], true), GatewayAction::Nothing);
        assert_eq!(GatewayAction::of([], false), GatewayAction::Nothing);
    }

    #[test]
    fn a_store_write_over_a_valid_copy_is_live_over_an_expired_or_missing_one_it_needs_a_nudge() {
        let now = 1_800_000_000_000;
        assert_eq!(Delivery::of_store_write(Some(now + 60_000), true, now), Live);
        assert_eq!(Delivery::of_store_write(None, true, now), Live, "a token without an expiry is in use");
        assert_eq!(Delivery::of_store_write(Some(now - 1), true, now), NeedsNudge);
        assert_eq!(Delivery::of_store_write(Some(now), true, now), NeedsNudge);
        assert_eq!(Delivery::of_store_write(None, false, now), NeedsNudge, "no copy before: nothing to look at");
    }
}

//! What the tools that wait on a file share: the inotify events that say a file in a watched
//! directory changed, and a `poll(2)` timeout for a pending deadline.

use inotify::WatchMask;
use nix::poll::PollTimeout;
use std::time::Instant;

/// Events on a file's **directory** (filtered by name afterwards) that cover both ways the Claude
/// CLI writes (in place: `CLOSE_WRITE`; a temp file renamed over it: `MOVED_TO`), recreation
/// (`CREATE`), removal (`DELETE`, `MOVED_FROM`) and the directory itself going away
/// (`DELETE_SELF`, `MOVE_SELF`).
pub const FILE_IN_DIR_EVENTS: WatchMask = WatchMask::CLOSE_WRITE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// The `poll(2)` timeout until `deadline` (none: wait forever), rounded up to the millisecond so
/// a loop does not spin through the last fraction of one.
#[must_use]
pub fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    deadline.map_or(PollTimeout::NONE, |at| {
        let ms = at.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeouts_round_up_and_none_waits_forever() {
        assert_eq!(poll_timeout(None), PollTimeout::NONE);
        assert_eq!(poll_timeout(Instant::now().checked_sub(Duration::from_secs(1))), PollTimeout::ZERO);
        let t = poll_timeout(Some(Instant::now() + Duration::from_micros(1500)));
        assert!(t == PollTimeout::from(2u8) || t == PollTimeout::from(1u8), "{t:?}");
    }
}

//! The accept loop both listeners share: the proxy port (`server`) and the webhook receiver
//! (`hook`).
//!
//! A bounded poll instead of a blocking `accept`: `Drop` may run on a thread outside the network
//! namespace the listener lives in, where a self-connect to wake it would go astray.

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

/// What a listener's shared state offers the accept loop.
pub(crate) trait Listening: Send + Sync + 'static {
    /// Whether `Drop` asked the listener to stop.
    fn shutting_down(&self) -> bool;
    /// Clones of the open connections, for `Drop` to shut them down; a connection is removed when
    /// it ends (a clone left behind would keep it open after the answer).
    fn conns(&self) -> &Mutex<HashMap<u64, TcpStream>>;
}

/// Accepts until shutdown, serving each connection with `serve(stream, id, shared)` on a thread
/// named `name`; returns the connection threads still running, for `Drop` to join.
pub(crate) fn accept_loop<S: Listening>(
    listener: &TcpListener,
    shared: &Arc<S>,
    name: &str,
    serve: impl Fn(TcpStream, u64, &S) + Clone + Send + 'static,
) -> Vec<JoinHandle<()>> {
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0_u64;
    while !shared.shutting_down() {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50_u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                eprintln!("keeper-anthropic-mock: poll failed, no longer accepting: {e}");
                break;
            }
        }
        let Ok((stream, _)) = listener.accept() else { continue };
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        let id = next_id;
        next_id += 1;
        if let Ok(clone) = stream.try_clone() {
            shared.conns().lock().unwrap_or_else(PoisonError::into_inner).insert(id, clone);
        }
        // Finished threads need no join; dropping their handles keeps the list short.
        handles.retain(|h| !h.is_finished());
        let (shared, serve) = (Arc::clone(shared), serve.clone());
        let spawned = thread::Builder::new().name(name.to_owned()).spawn(move || {
            serve(stream, id, &shared);
            // The last descriptor of the connection goes: the client sees its end.
            shared.conns().lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => eprintln!("keeper-anthropic-mock: cannot spawn a connection thread: {e}"),
        }
    }
    handles
}

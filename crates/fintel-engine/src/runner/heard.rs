//! What a task heard from the outside while it ran ([`Heard`]): the points where SEC or the
//! provider answers note it, and the task's end closes only the breakers of the services that
//! answered ([`crate::outcome::breakers_closed`]). Kept per task (a task-local value of the
//! task's own future, which never spawns), so concurrent tasks never mix what they heard.

use std::cell::Cell;
use std::future::Future;

use crate::outcome::Heard;

tokio::task_local! {
    static HEARD: Cell<Heard>;
}

/// Runs `task`, returning what it heard with its output.
pub(super) async fn listening<F: Future>(task: F) -> (F::Output, Heard) {
    HEARD
        .scope(Cell::new(Heard::default()), async move {
            let out = task.await;
            (out, HEARD.with(Cell::get))
        })
        .await
}

/// SEC answered the running task.
pub(super) fn sec_answered() {
    note(|h| h.sec = true);
}

/// The provider answered the running task's model call.
pub(super) fn provider_answered() {
    note(|h| h.provider = true);
}

fn note(set: impl FnOnce(&mut Heard)) {
    // Outside a task (none runs so) there is nothing to note.
    let _ = HEARD.try_with(|cell| {
        let mut heard = cell.get();
        set(&mut heard);
        cell.set(heard);
    });
}

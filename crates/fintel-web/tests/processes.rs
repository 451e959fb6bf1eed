//! A batch with a live process is shown as running in that process (pid, host, since), with
//! the command that joins it, instead of a resume command; once the process is gone the resume
//! command is back.

mod common;

use common::*;
use fintel_time::Clock;

#[tokio::test]
async fn a_batch_with_a_live_process_names_it_instead_of_offering_a_resume() {
    let f = fixture();
    let store = f.store();
    let owner = store
        .register_owner("worker-1", &f.dir.path().join("locks"), f.clock.now())
        .unwrap();
    store.attach_owner("worker-1", MAIN).unwrap();
    store
        .set_batch_state(
            MAIN,
            fintel_store::BatchState::Stopped,
            Some("stopped by request"),
            f.clock.now(),
        )
        .unwrap();
    let app = f.router();
    let pid = std::process::id();
    let running = format!("Running in process {pid} on ");

    let list = get(&app, "/").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&running), "{}", list.body);
    assert!(
        !list
            .body
            .contains("Resume with <code>fintel batch --resume b-main-0001</code>"),
        "no resume offered for a batch a live process runs: {}",
        list.body
    );
    let page = get(&app, &format!("/batches/{MAIN}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&running), "{}", page.body);
    assert!(
        page.body
            .contains("fintel batch --resume b-main-0001 --join"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Resume command"), "{}", page.body);

    // The process exits: the resume command is back.
    store.unregister_owner("worker-1").unwrap();
    drop(owner);
    let page = get(&app, &format!("/batches/{MAIN}")).await;
    assert!(!page.body.contains(&running), "{}", page.body);
    assert!(page.body.contains("Resume command"), "{}", page.body);
    let list = get(&app, "/").await;
    assert!(
        list.body
            .contains("Resume with <code>fintel batch --resume b-main-0001</code>"),
        "{}",
        list.body
    );
}

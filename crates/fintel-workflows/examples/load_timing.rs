//! Prints how long loading the built-in workflows takes (parse, check, compile every schema).
fn main() {
    let start = std::time::Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        let registry = fintel_workflows::Registry::load(&[]).expect("built-ins load");
        assert!(!registry.list().is_empty());
    }
    println!(
        "Registry::load(&[]): {:?} per load",
        start.elapsed() / rounds
    );
}

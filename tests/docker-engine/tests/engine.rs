//! The engine itself: it starts, runs busybox containers, and every Compose found talks to it.

use keeper_docker_test_engine::{composes_or_skip, engine_or_skip, run_ok};

#[test]
fn busybox_container_runs_on_the_private_engine() {
    let engine = engine_or_skip!();
    assert!(engine.docker_host().starts_with("unix:///tmp/keeper-dockerd-"), "{}", engine.docker_host());
    let out = engine.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        engine.busybox_image(),
        "sh",
        "-c",
        "id -un; echo $((6*7))",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["root", "42"]);
    let out =
        engine.docker_ok(&["run", "--rm", "--network", "none", "--user", "1000", engine.busybox_image(), "id", "-un"]);
    assert_eq!(out.trim(), "node");
}

#[test]
fn every_compose_found_reaches_the_engine() {
    let engine = engine_or_skip!();
    for compose in composes_or_skip!(engine) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!("services:\n  one:\n    image: {}\n    command: [\"true\"]\n", engine.busybox_image()),
        )
        .unwrap();
        let project = keeper_docker_test_engine::unique_name("engine-smoke");
        let out =
            run_ok(compose.command(engine).current_dir(dir.path()).args(["-p", &project, "config", "--services"]));
        assert_eq!(out.trim(), "one", "{}", compose.label());
        let _ = run_ok(compose.command(engine).current_dir(dir.path()).args(["-p", &project, "run", "--rm", "one"]));
        let _ = run_ok(compose.command(engine).current_dir(dir.path()).args(["-p", &project, "down"]));
    }
}

use crate::{Project, autosave, run};

#[test]
fn demo_runs_a_session_and_leaves_a_store_the_other_commands_can_read() {
    let p = Project::empty();
    let dir = p.temp().join("demo");
    let mut cmd = autosave(p.temp());
    cmd.args(["--json", "demo", "--mib", "4", "--dir"])
        .arg(&dir);
    let doc = run(cmd).ok().json();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["command"], "demo");
    let steps = doc["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "first autosave",
            "autosave, nothing changed",
            "autosave after a 1 % edit",
            "explicit save",
            "edit, autosave, then crash",
            "reopen and recover"
        ]
    );
    assert_eq!(steps[0]["hashed"], steps[0]["entries"]);
    assert!(
        steps[1]["snapshot"].is_null(),
        "an unchanged tree makes no snapshot"
    );
    assert_eq!(steps[1]["bytes_written"], 0);
    assert!(
        steps[2]["bytes_hashed"].as_u64().unwrap() < steps[0]["bytes_hashed"].as_u64().unwrap()
    );
    assert!(
        steps[5]["detail"]
            .as_str()
            .unwrap()
            .contains("identical: true")
    );

    let store = doc["store"].as_str().unwrap();
    let mut check = autosave(p.temp());
    check.args(["--store", store, "check", "--read-data"]);
    run(check).ok();
}

#[test]
fn demo_prints_a_table_and_where_the_store_is() {
    let p = Project::empty();
    let dir = p.temp().join("demo");
    let mut cmd = autosave(p.temp());
    cmd.args(["demo", "--mib", "2", "--dir"]).arg(&dir);
    let text = run(cmd).ok().text();
    assert!(text.lines().next().unwrap().starts_with("step"), "{text}");
    assert!(text.contains("autosave --store"), "{text}");
}

//! The global flags: `-q`, `-v`, `--no-progress`, `--json`, and local times.

use crate::Project;

#[test]
fn quiet_silences_summaries_of_changes_but_not_what_was_asked_for() {
    let p = Project::new();
    assert_eq!(p.run(&["snapshot", ".", "-q"]).ok().text(), "");
    assert_eq!(p.run(&["-q", "forget", "--keep-last", "1"]).ok().text(), "");
    assert!(!p.run(&["-q", "snapshots"]).ok().text().is_empty());
    assert_eq!(
        p.run(&["cat", "-q", "1", "notes.txt"]).ok().text(),
        "first notes\n"
    );
}

#[test]
fn json_wins_over_quiet() {
    let p = Project::new();
    let doc = p.run(&["snapshot", ".", "-q", "--json"]).ok().json();
    assert_eq!(doc["snapshot"], 1);
}

#[test]
fn verbose_shows_full_digests_and_no_progress_is_accepted() {
    let p = Project::with_snapshot();
    let manifest = p.json("show", &["1"])["snapshot"]["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let short = p.run(&["show", "1", "--no-progress"]).ok().text();
    assert!(
        short.contains(&format!("manifest  {}\n", &manifest[..12])),
        "{short}"
    );
    let long = p.run(&["show", "1", "-v"]).ok().text();
    assert!(long.contains(&format!("manifest  {manifest}\n")), "{long}");
    p.run(&["check", "--no-progress", "--read-data"]).ok();
}

#[test]
fn human_times_are_local_and_json_times_are_nanoseconds() {
    let p = Project::with_snapshot();
    let created = p.json("snapshots", &[])["snapshots"][0]["created_ns"]
        .as_i64()
        .unwrap();
    let time_in = |tz: &str| {
        let mut cmd = p.cmd(&["snapshots"]);
        cmd.env("TZ", tz);
        let out = crate::run(cmd).ok().text();
        out.lines().nth(1).unwrap()[14..33].to_owned()
    };
    let (utc, tokyo) = (time_in("UTC0"), time_in("JST-9"));
    let hour = |t: &str| t[11..13].parse::<i64>().unwrap();
    assert_eq!((hour(&utc) + 9) % 24, hour(&tokyo), "{utc} vs {tokyo}");
    let secs = created / 1_000_000_000;
    assert_eq!(hour(&utc), secs % 86_400 / 3600, "{utc}");
}

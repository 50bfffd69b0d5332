//! `repair`.

use crate::Project;

#[test]
fn repair_index_says_it_is_not_available_yet() {
    let p = Project::with_snapshot();
    let run = p.run(&["repair", "index"]).expect(1);
    assert_eq!(
        run.stderr,
        "error: repair is not available in this version\n"
    );
    let doc = p.run(&["repair", "index", "--json"]).expect(1).json();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["command"], "repair");
    assert_eq!(doc["error"]["exit_code"], 1);
    assert_eq!(
        doc["error"]["message"],
        "repair is not available in this version"
    );
}

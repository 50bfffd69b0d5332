use std::sync::mpsc;
use std::time::Duration;

use autosave::policy::{Config, Event};
use autosave::tree::{EntryPath, Node, Source};
use autosave::{Driver, Host, Options, SaveReport, Session};

use crate::project;

struct TestHost {
    content: Vec<u8>,
    reports: mpsc::Sender<Option<u64>>,
}

impl Host for TestHost {
    fn capture(&mut self) -> Vec<Node<'static>> {
        let bytes = self.content.clone();
        let open = Box::new(move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(bytes.clone())))
        });
        vec![Node {
            path: EntryPath::new(["data"]),
            kind: "ndarray".into(),
            meta: autosave::tree::Meta::default(),
            source: Source::Reader(open),
            token: None,
        }]
    }

    fn report(&mut self, result: &autosave::Result<SaveReport>) {
        let _ = self
            .reports
            .send(result.as_ref().ok().and_then(|r| r.snapshot.map(|s| s.0)));
    }
}

#[test]
fn the_driver_autosaves_once_the_interval_has_passed_and_the_host_is_idle() {
    let (_tmp, dir) = project();
    let session = Session::open(&dir, Options::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    let host = TestHost {
        content: vec![5; 20_000],
        reports: tx,
    };
    // The shortest interval the policy allows; this test waits for it in real time.
    let config = Config {
        interval: Duration::from_secs(30),
        ..Config::default()
    };
    let driver = Driver::start(session, config, host);
    driver.send(Event::Edited);
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing is due yet"
    );
    driver.send(Event::Idle);
    let snapshot = rx
        .recv_timeout(Duration::from_secs(45))
        .expect("an autosave within the interval");
    assert!(snapshot.is_some());
    let session = driver.stop().expect("the session comes back");
    assert_eq!(session.store().snapshots().unwrap().len(), 1);
}

#[test]
fn a_busy_host_is_never_autosaved() {
    let (_tmp, dir) = project();
    let session = Session::open(&dir, Options::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    let host = TestHost {
        content: vec![6; 20_000],
        reports: tx,
    };
    let driver = Driver::start(session, Config::default(), host);
    driver.send(Event::Edited);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    let session = driver.stop().expect("the session comes back");
    assert!(session.store().snapshots().unwrap().is_empty());
}

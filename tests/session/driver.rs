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

#[test]
fn an_explicit_save_through_the_driver_records_a_baseline_that_supersedes_the_autosaves() {
    let (_tmp, dir) = project();
    let mut session = Session::open(&dir, Options::default()).unwrap();
    let mut host = TestHost {
        content: vec![7; 20_000],
        reports: mpsc::channel().0,
    };
    // An autosave before the driver starts, which the baseline supersedes.
    session.autosave(&host.capture()).unwrap();
    let driver = Driver::start(session, Config::default(), host);
    driver.send(Event::Edited);
    driver.send(Event::Idle);
    let saved = TestHost {
        content: vec![8; 20_000],
        reports: mpsc::channel().0,
    }
    .capture();
    let report = driver.save_explicit(saved).unwrap();
    let id = report.snapshot.expect("an explicit save always commits");
    assert_eq!(report.removed.len(), 1, "{report:?}");
    let session = driver.stop().expect("the session comes back");
    let snapshots = session.store().snapshots().unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].id, id);
    assert_eq!(snapshots[0].kind, autosave::store::SnapshotKind::Explicit);
    let restored = crate::restored_contents(&session.restore(id).unwrap());
    assert_eq!(restored[0].2, vec![8; 20_000]);
}

#[test]
fn an_explicit_save_through_a_driver_whose_loop_is_gone_is_a_typed_error() {
    struct Panics(mpsc::Sender<()>);
    impl Host for Panics {
        fn capture(&mut self) -> Vec<Node<'static>> {
            let _ = self.0.send(());
            panic!("the host's capture failed")
        }
        fn report(&mut self, _: &autosave::Result<SaveReport>) {}
    }
    let (_tmp, dir) = project();
    let session = Session::open(&dir, Options::default()).unwrap();
    let config = Config {
        interval: Duration::from_secs(30),
        ..Config::default()
    };
    let (captured, capture) = mpsc::channel();
    let driver = Driver::start(session, config, Panics(captured));
    driver.send(Event::Edited);
    driver.send(Event::Idle);
    // The first autosave falls due after the interval and panics in capture, ending the loop.
    // (A save sent while the thread unwinds is dropped with its inbox, unanswered.)
    capture
        .recv_timeout(Duration::from_secs(90))
        .expect("the autosave fell due");
    assert!(matches!(
        driver.save_explicit(Vec::new()),
        Err(autosave::Error::DriverStopped)
    ));
    assert!(driver.stop().is_none(), "the session went with the loop");
}

//! The real `meshdeck` binary in a pseudo-terminal against an in-process simulated fleet:
//! open services, filter, drill down, watch a cluster go stale, quit cleanly. The screen is
//! read through a VT100 emulator, as a user would see it.

use crate::common::*;
use meshdeck::sim::{FaultSpec, Fleet};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Console {
    parser: Arc<Mutex<vt100::Parser>>,
    /// Every byte the console wrote to the terminal.
    wire: Arc<Mutex<Vec<u8>>>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

/// A 120×30 pseudo-terminal.
fn pty() -> portable_pty::PtyPair {
    native_pty_system()
        .openpty(PtySize {
            rows: 30,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty")
}

/// The meshdeck binary with `args`, its home in `home`, a UTF-8 locale and `env`.
fn command<S: AsRef<std::ffi::OsStr>>(
    home: &std::path::Path,
    args: &[S],
    env: &[(&str, &str)],
) -> CommandBuilder {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_meshdeck"));
    cmd.args(args);
    cmd.env("HOME", home);
    cmd.env("XDG_CONFIG_HOME", home.join("config"));
    cmd.env("XDG_STATE_HOME", home.join("state"));
    cmd.env("TERM", "xterm-256color");
    // a UTF-8 locale unless a test says otherwise (CI may have none)
    cmd.env("LANG", "C.UTF-8");
    cmd.env_remove("LC_ALL");
    cmd.env_remove("LC_CTYPE");
    cmd.env_remove("COLORTERM");
    cmd.env_remove("KUBECONFIG");
    cmd.env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Console {
    fn start<S: AsRef<std::ffi::OsStr>>(
        home: &std::path::Path,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Console {
        let pair = pty();
        let child = pair
            .slave
            .spawn_command(command(home, args, env))
            .expect("spawn meshdeck");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = Arc::new(Mutex::new(pair.master.take_writer().expect("writer")));
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(30).expect("rows"),
            std::num::NonZeroU16::new(120).expect("cols"),
            0,
        )));
        let wire = Arc::new(Mutex::new(Vec::new()));
        let (p, w, raw) = (parser.clone(), writer.clone(), wire.clone());
        std::thread::spawn(move || {
            let _master = pair.master; // keep the pty open while reading
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let chunk = &buf[..n];
                        // answer a cursor-position query, as a terminal would
                        if chunk.windows(4).any(|x| x == b"\x1b[6n") {
                            let _ = w.lock().expect("writer").write_all(b"\x1b[1;1R");
                        }
                        p.lock().expect("parser").process(chunk);
                        raw.lock().expect("wire").extend_from_slice(chunk);
                    }
                }
            }
        });
        Console {
            parser,
            wire,
            writer,
            child,
        }
    }

    fn screen(&self) -> String {
        self.parser.lock().expect("parser").screen().contents()
    }

    fn wait_for(&self, what: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "`{what}` did not appear within {secs}s; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type keys one at a time, as a person would (an Esc followed at once by another key
    /// reads as Alt+key in any terminal).
    fn keys(&self, keys: &str) {
        for b in keys.bytes() {
            self.writer
                .lock()
                .expect("writer")
                .write_all(&[b])
                .expect("write");
            std::thread::sleep(Duration::from_millis(40));
        }
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Send bytes at once (an escape sequence: arrows, function keys, delete).
    fn raw(&self, bytes: &[u8]) {
        self.writer
            .lock()
            .expect("writer")
            .write_all(bytes)
            .expect("write");
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Ctrl-C, and the console exits 0.
    fn quit(&mut self) {
        self.keys("\x03");
        let st = self.wait_exit(10);
        assert!(st.success(), "{st:?}");
    }

    fn wait_exit(&mut self, secs: u64) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "meshdeck did not exit within {secs}s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn args(kc: &std::path::Path) -> Vec<String> {
    vec![
        "--kubeconfig".into(),
        kc.display().to_string(),
        "--context".into(),
        "eu-west,us-east,ap-south".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_filter_drill_see_a_cluster_go_stale_and_quit() {
    let f = Arc::new(fleet(3).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let home = dir.path().to_path_buf();
    let sim: Arc<Fleet> = f.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = Console::start(&home, &args(&kc), &[]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":svc\r");
        c.wait_for(" services [", 5);
        c.keys("/reviews");
        let s = c.wait_for("services /reviews [3/", 5);
        assert!(s.contains("ap-south") && s.contains("reviews"), "{s}");
        c.keys("\r\r");
        let s = c.wait_for("workloads of svc bookstore/reviews", 5);
        assert!(s.contains("reviews-v1") && s.contains("reviews-v3"), "{s}");
        c.keys("\r");
        c.wait_for("pods of Deployment bookstore/reviews-v1", 5);
        // a cluster stops answering: its chip turns stale, the console keeps going
        sim.fault("ap-south", &FaultSpec::Down).expect("fault");
        let s = c.wait_for("~ap-south stale", 10);
        assert!(s.contains("clusters 2/3 synced"), "{s}");
        c.keys("\x1b");
        c.wait_for("workloads of svc bookstore/reviews", 5);
        sim.fault("ap-south", &FaultSpec::Up).expect("fault");
        c.wait_for("clusters 3/3 synced", 10);
        // quit: exit 0 and the terminal is back on the main screen
        c.keys("\x03");
        let st = c.wait_exit(10);
        assert!(st.success(), "{st:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !c.parser.lock().expect("parser").screen().alternate_screen(),
            "the alternate screen was left"
        );
    })
    .await
    .expect("console test");
    // the console only ever read
    let writes: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_color_means_no_colour_on_the_wire_and_a_reversed_selection() {
    let f = Arc::new(fleet(3).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let home = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut c = Console::start(&home, &args(&kc), &[("NO_COLOR", "1")]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":wl\r");
        c.wait_for(" workloads [", 5);
        {
            let p = c.parser.lock().expect("parser");
            let screen = p.screen();
            let mut inverse_rows = 0;
            for row in 0..30 {
                let mut inv = false;
                for col in 0..120 {
                    if let Some(cell) = screen.cell(row, col) {
                        assert_eq!(cell.fgcolor(), vt100::Color::Default, "fg at {row},{col}");
                        assert_eq!(cell.bgcolor(), vt100::Color::Default, "bg at {row},{col}");
                        inv |= cell.inverse();
                    }
                }
                if inv {
                    inverse_rows += 1;
                }
            }
            assert_eq!(
                inverse_rows, 1,
                "the selected row is shown in reverse video"
            );
        }
        c.quit();
    })
    .await
    .expect("console test");
}

/// `TERM=screen` (tmux's default on many bastions) says 16 colours: nothing on the wire is a
/// 256-colour or RGB sequence. `LANG=C` says no Unicode: every cell is ASCII (`+ ok`, `+--+`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn term_screen_gets_16_colours_and_lang_c_gets_ascii() {
    let (_f, _dir, kc, home) = authoring_fleet().await;
    tokio::task::spawn_blocking(move || {
        let mut c = Console::start(&home, &args(&kc), &[("TERM", "screen")]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":wl\r");
        c.wait_for(" workloads [", 5);
        let wire = c.wire.lock().expect("wire").clone();
        let text = String::from_utf8_lossy(&wire);
        for seq in ["38;5;", "48;5;", "38;2;", "48;2;"] {
            assert!(!text.contains(seq), "TERM=screen got a {seq} sequence");
        }
        assert!(
            text.contains("\x1b[3"),
            "still coloured (16 colours): no colour at all was sent"
        );
        c.quit();

        let mut c = Console::start(&home, &args(&kc), &[("LANG", "C")]);
        let s = c.wait_for("clusters 3/3 synced", 30);
        assert!(s.is_ascii(), "LANG=C: non-ASCII on screen:\n{s}");
        assert!(
            s.contains("+ ok") || s.contains("^ degraded") || s.contains("x failure"),
            "{s}"
        );
        assert!(s.contains("+-"), "ASCII borders:\n{s}");
        c.quit();
    })
    .await
    .expect("console test");
}

/// Over SSH, `c` puts the selected row's name on the operator's own clipboard through the
/// terminal (OSC 52), and says so; in a YAML view it copies the whole document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_copies_over_ssh_with_osc52() {
    use base64::Engine;
    let (_f, _dir, kc, home) = authoring_fleet().await;
    tokio::task::spawn_blocking(move || {
        let mut c = Console::start(&home, &args(&kc), &[("SSH_TTY", "/dev/pts/7")]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":svc\r");
        c.wait_for(" services [", 5);
        c.keys("/ratings\r");
        c.wait_for("services /ratings", 5);
        c.keys("c");
        let s = c.wait_for("to the clipboard (OSC 52)", 5);
        assert!(s.contains("copied name ratings"), "{s}");
        let wire = c.wire.lock().expect("wire").clone();
        let text = String::from_utf8_lossy(&wire).to_string();
        let start = text.find("\x1b]52;c;").expect("an OSC 52 sequence") + 7;
        let end = start + text[start..].find('\x07').expect("its end");
        let copied = base64::engine::general_purpose::STANDARD
            .decode(&text[start..end])
            .expect("base64");
        assert_eq!(copied, b"ratings");
        c.quit();
    })
    .await
    .expect("console test");
}

/// k9s's start-up flags: `-n NAMESPACE -c VIEW` opens that view in that namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_n_and_dash_c_open_a_view_in_a_namespace() {
    let (_f, _dir, kc, home) = authoring_fleet().await;
    tokio::task::spawn_blocking(move || {
        let mut a = args(&kc);
        a.extend(["-n", "payments", "-c", "svc"].map(String::from));
        let mut c = Console::start(&home, &a, &[]);
        let s = c.wait_for(" services ns:payments [", 30);
        assert!(!s.contains("bookstore"), "only payments:\n{s}");
        c.quit();
    })
    .await
    .expect("console test");
}

/// A theme file edited while the console runs is applied within a tick or two; an invalid
/// edit keeps the running theme and flashes the error with its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_theme_edited_while_running_is_applied() {
    let f = Arc::new(fleet(1).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let home = dir.path().to_path_buf();
    let themes = home.join("config/meshdeck/themes");
    std::fs::create_dir_all(&themes).expect("mkdir");
    let theme = themes.join("mine.yaml");
    let write = move |bg: &str| {
        std::fs::write(
            themes.join("mine.yaml"),
            format!("name: mine\nextends: default\nstyles:\n  header: {{fg: white, bg: {bg}}}\n"),
        )
        .expect("theme")
    };
    write("blue");
    tokio::task::spawn_blocking(move || {
        let a = [
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west",
            "--theme",
            "mine",
        ];
        let mut c = Console::start(&home, &a, &[]);
        c.wait_for("clusters 1/1 synced", 30);
        let header_bg = |c: &Console| {
            let p = c.parser.lock().expect("parser");
            p.screen().cell(0, 2).map(|x| x.bgcolor())
        };
        assert_eq!(header_bg(&c), Some(vt100::Color::Idx(4)), "blue");
        // mtimes have a granularity: make sure the edit is seen as one
        std::thread::sleep(Duration::from_millis(1100));
        write("red");
        c.wait_for("theme mine reloaded", 10);
        assert_eq!(
            header_bg(&c),
            Some(vt100::Color::Idx(1)),
            "red, without a restart"
        );
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&theme, "name: mine\nstyles: [\n").expect("broken");
        let s = c.wait_for("theme mine not reloaded, keeping the running one", 10);
        assert!(
            s.contains("mine.yaml:2:"),
            "the error names the file and line:\n{s}"
        );
        assert_eq!(
            header_bg(&c),
            Some(vt100::Color::Idx(1)),
            "the running theme stays"
        );
        c.quit();
    })
    .await
    .expect("console test");
}

/// A 3-cluster sim with its kubeconfig written in a fresh home directory.
async fn authoring_fleet() -> (
    Arc<Fleet>,
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let f = Arc::new(fleet(3).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let home = dir.path().to_path_buf();
    (f, dir, kc, home)
}

/// The workflow the console exists for: a traffic shift from the template, a deliberate typo
/// found through the inline error, preview, apply, and the VirtualService arriving by watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn author_fix_a_typo_preview_apply_and_see_the_virtualservice_arrive() {
    let (f, dir, kc, home) = authoring_fleet().await;
    let policies = dir.path().join("policies");
    let pol = policies.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = args(&kc);
        a.extend(["--policies".to_string(), pol.display().to_string()]);
        let mut c = Console::start(&home, &a, &[]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":pol\r");
        c.wait_for("no policies in", 5);
        c.keys("n");
        c.wait_for("new policy from a template", 5);
        c.keys("\r");
        c.wait_for("new TrafficPolicy traffic-shift-1", 5);
        c.wait_for("valid: 2 changes in ap-south", 10);
        // a deliberate typo: search for the key and type an `x` in front of it
        c.keys("\x06");
        c.keys("trafficShift\r");
        c.keys("x");
        let s = c.wait_for("did you mean \"trafficShift\"", 10);
        assert!(
            s.contains("16:5: spec.policy.xtrafficShift: unknown field"),
            "{s}"
        );
        assert!(s.contains("✗16"), "the marker on line 16: {s}");
        // apply is refused while the error stands
        c.keys("\x07");
        c.wait_for("fix the errors first", 5);
        // f8 goes to the error; delete removes the x
        c.raw(b"\x1b[19~");
        c.raw(b"\x1b[3~");
        c.wait_for("valid: 2 changes in ap-south", 10);
        // the diff tab: two creates in ap-south
        c.keys("\x14");
        let s = c.wait_for("ap-south     VirtualService         create 1", 5);
        assert!(
            s.contains("create ap-south DestinationRule bookstore/details"),
            "{s}"
        );
        // apply: the dialog names the clusters; yes
        c.keys("\x07");
        c.wait_for("clusters: ap-south", 5);
        c.keys("y");
        let s = c.wait_for("done: 2 changes applied", 15);
        assert!(s.contains("kubernetes rbac: all"), "{s}");
        assert!(s.contains("ap-south: applied 2 ok, 0 failed"), "{s}");
        // the policy is listed; the VirtualService arrives in the Istio objects view
        c.raw(b"\x1b");
        c.wait_for("traffic-shift-1", 5);
        c.keys(":vs\r");
        let s = c.wait_for("details.bookstore.svc.cluster.local", 10);
        assert!(s.contains("meshdeck"), "owned by meshdeck: {s}");
        c.quit();
    })
    .await
    .expect("console test");
    // the file was saved, and the writes went to ap-south only, as meshdeck
    let text = std::fs::read_to_string(policies.join("traffic-shift-1.yaml")).expect("saved");
    assert!(text.contains("    trafficShift:"), "{text}");
    let writes: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_mutating() && !e.path.contains("accessreviews"))
        .collect();
    assert_eq!(writes.len(), 2, "{writes:?}");
    for w in &writes {
        assert_eq!(w.cluster, "ap-south", "{w:?}");
        assert_eq!(w.method, "PATCH", "server-side apply: {w:?}");
        assert_eq!(w.field_manager, "meshdeck", "{w:?}");
    }
    let audit =
        std::fs::read_to_string(dir.path().join("state/meshdeck/audit.log")).expect("audit");
    // an intent before each of the 2 writes, and its result after
    assert_eq!(audit.lines().count(), 4, "{audit}");
    assert_eq!(audit.matches("\"phase\":\"intent\"").count(), 2, "{audit}");
}

/// Read-only: the policies view lists, but no key reaches the editor or a write, and the sim
/// sees no mutating request (not even an access review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_console_cannot_reach_authoring_and_sends_no_write() {
    let (f, dir, kc, home) = authoring_fleet().await;
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("dir");
    std::fs::write(
        policies.join("shift.yaml"),
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: shift, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: details, namespace: bookstore, clusterName: ap-south}]}\n  policy: {requestTimeout: 3s}\n",
    )
    .expect("policy");
    let pol = policies.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = args(&kc);
        a.extend([
            "--policies".to_string(),
            pol.display().to_string(),
            "--readonly".to_string(),
        ]);
        let mut c = Console::start(&home, &a, &[]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":pol\r");
        // the policy translates, but nothing of it is live yet: not shown as if it were
        let s = c.wait_for("saved, not applied", 5);
        assert!(s.contains("shift") && s.contains("warning"), "{s}");
        assert!(!s.contains("<n>new"), "{s}");
        c.keys("n");
        c.wait_for("read-only", 5);
        c.keys("e");
        c.keys("\x04");
        c.keys("\r");
        let s = c.wait_for("yaml", 5);
        assert!(!s.contains("preview"), "no editor: {s}");
        assert!(s.contains("requestTimeout: 3s"), "{s}");
        c.raw(b"\x1b");
        c.quit();
    })
    .await
    .expect("console test");
    let writes: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_write())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

/// SIGINT, SIGQUIT, SIGTERM and SIGHUP sent to the console all end it through the same exit:
/// the alternate screen is left and the cursor shown again, and the exit status is 128 + the
/// signal's number (it was 0: a script could not tell a kill from a quit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ending_signal_restores_the_terminal() {
    let f = Arc::new(fleet(3).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let home = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        for sig in ["INT", "QUIT", "TERM", "HUP"] {
            let mut c = Console::start(&home, &args(&kc), &[]);
            c.wait_for("clusters 3/3 synced", 30);
            {
                let p = c.parser.lock().expect("parser");
                assert!(
                    p.screen().alternate_screen() && p.screen().hide_cursor(),
                    "{sig}"
                );
            }
            let pid = c.child.process_id().expect("pid");
            let st = std::process::Command::new("kill")
                .args([format!("-{sig}"), pid.to_string()])
                .status()
                .expect("kill");
            assert!(st.success());
            let exit = c.wait_exit(10);
            // 128 + the signal's number, as a shell reports a program a signal ended
            let want = 128
                + match sig {
                    "INT" => 2,
                    "QUIT" => 3,
                    "TERM" => 15,
                    _ => 1,
                };
            assert_eq!(exit.exit_code(), want, "SIG{sig}: {exit:?}");
            // the reader thread drains what the console wrote last
            std::thread::sleep(Duration::from_millis(200));
            let p = c.parser.lock().expect("parser");
            assert!(
                !p.screen().alternate_screen(),
                "SIG{sig}: still on the alternate screen"
            );
            assert!(!p.screen().hide_cursor(), "SIG{sig}: the cursor is hidden");
        }
    })
    .await
    .expect("console test");
}

/// A watch that sends an endless line (a broken proxy, a hostile server) is refused at 2 MiB
/// with a named cause, the console's memory stays bounded and the healthy clusters stay
/// synced. The console keeps running, so the test waits for the failure to happen (however
/// busy the machine) instead of racing a one-shot command against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_watch_line_is_refused_and_memory_stays_bounded() {
    let f = Arc::new(fleet(3).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    f.fault("us-east", &FaultSpec::EndlessLine).expect("fault");
    let home = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut c = Console::start(&home, &args(&kc), &[]);
        let log = home.join("state/meshdeck/meshdeck.log");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("passed 2 MiB without a line end: refused") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no refused endless line within 120 s; the log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = c.child.process_id().expect("pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let peak: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM");
        eprintln!("endless line: peak {peak} KiB");
        assert!(peak < 400 * 1024, "peak {peak} KiB");
        // the healthy clusters are untouched: their rows are there
        c.keys(":svc @eu-west\r");
        c.wait_for("eu-west", 10);
        c.quit();
    })
    .await
    .expect("console test");
}

/// Against a real Kubernetes 1.20 API server, which has no SelfSubjectReview: the header never
/// presents the kubeconfig user entry's name (`real-admin`) as the identity the server knows
/// (`admin`); a read-write session asks and says the server cannot say, a read-only one does
/// not ask (the server's audit log shows no review from it) and marks the name as the
/// kubeconfig's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_the_server_cannot_confirm_is_marked_so() {
    let Some(api) = tokio::task::spawn_blocking(RealApi::start)
        .await
        .expect("join")
    else {
        return;
    };
    let home = tempfile::tempdir().expect("home").keep();
    let kc = api.kubeconfig();
    let api = tokio::task::spawn_blocking(move || {
        let args = |ro: bool| {
            let mut a: Vec<String> = Vec::new();
            if ro {
                a.push("--readonly".into());
            }
            a.extend([
                "--kubeconfig".into(),
                kc.display().to_string(),
                "--context".into(),
                "real".into(),
            ]);
            a
        };
        let mut c = Console::start(&home, &args(false), &[]);
        let s = c.wait_for(
            "user real-admin (kubeconfig user; the server cannot say)",
            60,
        );
        assert!(s.contains("clusters 1/1 synced"), "{s}");
        c.quit();
        let asked = api
            .audit()
            .iter()
            .filter(|e| {
                e["requestURI"]
                    .as_str()
                    .is_some_and(|u| u.contains("selfsubjectreviews"))
            })
            .count();
        assert!(asked >= 1, "the read-write session asked the server");
        let mut c = Console::start(&home, &args(true), &[]);
        let s = c.wait_for("clusters 1/1 synced", 60);
        assert!(s.contains("user real-admin (kubeconfig user)"), "{s}");
        assert!(!s.contains("user admin"), "{s}");
        c.quit();
        let after = api
            .audit()
            .iter()
            .filter(|e| {
                e["requestURI"]
                    .as_str()
                    .is_some_and(|u| u.contains("selfsubjectreviews"))
            })
            .count();
        assert_eq!(after, asked, "a read-only session sends no review (a POST)");
        api
    })
    .await
    .expect("console test");
    drop(api);
}

/// An SSH drop: the terminal hangs up under `meshdeck demo`. The console leaves through its
/// usual exit (no abort on the dead terminal), the demo's Prometheus (when there is one) is
/// stopped and its run directory removed, as ctrl-c and SIGTERM do.
// crossterm's event reader used to spin on the hung-up terminal (its mio source retries a
// read of 0 bytes or EIO at once, holding the lock the event loop polls), so about one run in
// ten under load never ended; the console now reads the terminal itself (ui::input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_ends_the_demo_and_cleans_up() {
    let home = tempfile::tempdir().expect("home").keep();
    tokio::task::spawn_blocking(move || {
        let pair = pty();
        let mut child = pair
            .slave
            .spawn_command(command(&home, &["demo", "--churn-ms", "0"], &[]))
            .expect("spawn meshdeck");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut parser = vt100::Parser::new(
                std::num::NonZeroU16::new(30).expect("rows"),
                std::num::NonZeroU16::new(120).expect("cols"),
                0,
            );
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        parser.process(&buf[..n]);
                        if parser.screen().contents().contains("clusters 3/3 synced") {
                            let _ = tx.send(());
                            return; // its handle on the terminal goes with it
                        }
                    }
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the demo synced");
        let pid = child.process_id().expect("pid") as i32;
        let run_dir = home.join(format!("state/meshdeck/demo/run-{pid}"));
        assert!(run_dir.exists(), "{}", run_dir.display());
        // its children (the demo's Prometheus, when the binary is here)
        let children: Vec<i32> = std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(") ")
                            .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(String::from))
                    })
                    .and_then(|pp| pp.parse::<i32>().ok())
                    == Some(pid)
            })
            .collect();
        // hang up: every handle on the terminal's master side closes
        drop(writer);
        drop(pair.master);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "meshdeck did not end on a hangup; its log:\n{}",
                std::fs::read_to_string(home.join("state/meshdeck/meshdeck.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // through its exit, not an abort: the status of a hangup (128 + SIGHUP)
        assert_eq!(status.exit_code(), 129, "{status:?}");
        assert!(!run_dir.exists(), "the run directory is removed");
        let deadline = Instant::now() + Duration::from_secs(20);
        for c in children {
            let alive = || {
                std::fs::read_to_string(format!("/proc/{c}/stat"))
                    .is_ok_and(|s| !s.contains(") Z "))
            };
            while alive() {
                assert!(Instant::now() < deadline, "child {c} outlived the demo");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
    .await
    .expect("hangup test");
}

/// `E` hands a policy to the user's editor (as kubectl edit): the console steps aside, the
/// edit comes back into the console's editor, validated and not yet saved; an editor that
/// fails changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_hands_a_policy_to_the_editor_and_loses_nothing() {
    let (_f, dir, kc, home) = authoring_fleet().await;
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("dir");
    let file = policies.join("ratings-timeout.yaml");
    let text = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: ratings-timeout, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    requestTimeout: 3s\n";
    std::fs::write(&file, text).expect("policy");
    // editors: one that changes the timeout, one that fails
    let good = dir.path().join("good-editor");
    std::fs::write(&good, "#!/bin/sh\nsed -i 's/3s/9s/' \"$1\"\n").expect("editor");
    let bad = dir.path().join("bad-editor");
    std::fs::write(&bad, "#!/bin/sh\necho broken > \"$1\"\nexit 1\n").expect("editor");
    for p in [&good, &bad] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let pol = policies.clone();
    tokio::task::spawn_blocking(move || {
        let mut a = args(&kc);
        a.extend(["--policies".to_string(), pol.display().to_string()]);
        let c = Console::start(
            &home,
            &a,
            &[("VISUAL", ""), ("EDITOR", good.to_str().expect("path"))],
        );
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":pol\r");
        c.wait_for("ratings-timeout", 10);
        c.keys("E");
        let s = c.wait_for("edited in the external editor", 15);
        assert!(s.contains("requestTimeout: 9s"), "{s}");
        // validated, not saved
        c.wait_for("valid: 1 change in eu-west", 15);
        assert!(
            std::fs::read_to_string(&file).expect("file").contains("3s"),
            "nothing saved before ctrl-s"
        );
        c.keys("\x13");
        c.wait_for("saved ratings-timeout.yaml", 10);
        assert!(std::fs::read_to_string(&file).expect("file").contains("9s"));
        drop(c);

        // an editor that fails: the console's text stays as it was
        let c = Console::start(&home, &a, &[("VISUAL", bad.to_str().expect("path"))]);
        c.wait_for("clusters 3/3 synced", 30);
        c.keys(":pol\r");
        c.wait_for("ratings-timeout", 10);
        c.keys("E");
        let s = c.wait_for("the text is as it was", 15);
        assert!(
            s.contains("requestTimeout: 9s") && !s.contains("broken"),
            "{s}"
        );
        drop(c);
    })
    .await
    .expect("console test");
}

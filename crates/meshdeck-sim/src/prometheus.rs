//! A real Prometheus (Debian's `prometheus` package, or any `prometheus` on PATH or in
//! `MESHDECK_PROMETHEUS`) scraping the simulated sidecars of some clusters, on loopback. The
//! demo starts one when the binary is there; the tests start their own.

use anyhow::Context;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus; dropping it stops it and removes its data.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    pub url: String,
    pub binary: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the Prometheus binary is: `MESHDECK_PROMETHEUS`, else `prometheus` on PATH.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MESHDECK_PROMETHEUS") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    })
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (cluster name, metrics URL) every `scrape` and wait
    /// until it is ready. None when no binary is found.
    pub fn start(
        targets: &[(String, String)],
        scrape: Duration,
    ) -> anyhow::Result<Option<Prometheus>> {
        let Some(binary) = binary() else {
            return Ok(None);
        };
        sweep_dead_runs(&std::env::temp_dir(), "meshdeck-prometheus-");
        let dir = std::env::temp_dir().join(format!(
            "meshdeck-prometheus-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let secs = scrape.as_secs().max(1);
        let mut config = format!(
            "global:\n  scrape_interval: {secs}s\n  evaluation_interval: {secs}s\nscrape_configs:\n"
        );
        for (name, url) in targets {
            let u: http::Uri = url.parse().with_context(|| format!("metrics URL {url}"))?;
            let host = u.authority().map(|a| a.as_str()).unwrap_or("127.0.0.1");
            config.push_str(&format!(
                "  - job_name: {name:?}\n    metrics_path: {:?}\n    static_configs:\n      - targets: [{host:?}]\n",
                u.path()
            ));
        }
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).context("writing prometheus.yml")?;
        // a port is taken between asking and binding only rarely: try a few
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let log = std::fs::File::create(dir.join("prometheus.log"))?;
            let mut cmd = Command::new(&binary);
            #[cfg(target_os = "linux")]
            {
                use std::os::unix::process::CommandExt;
                // its own process group: a terminal's hangup (an SSH drop) is not its to get
                // (Prometheus reloads on SIGHUP and would outlive us); and it ends when this
                // process ends, however that happens (even SIGKILL: the kernel tells it)
                cmd.process_group(0);
                // SAFETY: prctl is async-signal-safe and touches only the child being set up
                unsafe {
                    cmd.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let mut child = cmd
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if ready_probe(port) {
                    ready = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if ready {
                return Ok(Some(Prometheus {
                    child,
                    dir,
                    url,
                    binary,
                }));
            }
            let _ = child.kill();
            let _ = child.wait();
            last = std::fs::read_to_string(dir.join("prometheus.log")).ok();
        }
        let log = last.unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        anyhow::bail!(
            "{} did not become ready: {}",
            binary.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

/// Remove what runs that are gone left in `dir`: the entries named `<prefix><pid>` or
/// `<prefix><pid>-…` whose process no longer exists (killed before it could clean up).
pub fn sweep_dead_runs(dir: &std::path::Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether a process with this id exists (signal 0 asks without sending anything).
fn process_alive(pid: i32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks that the process exists
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// `GET /-/ready` answers 200.
fn ready_probe(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /-/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 32];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf[..n].starts_with(b"HTTP/1.1 200"))
}

//! Health and reflection, as operators' tools see them.

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::spawn_app;

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(channel(app.addr).await);
    for service in [
        "",
        "tradewatch.v1.ProgramService",
        "tradewatch.v1.IndicatorService",
    ] {
        // The database monitor reports within its first check; poll briefly.
        let mut status = None;
        for _ in 0..50 {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await;
            if let Ok(r) = r {
                status = Some(r.into_inner().status);
                if status == Some(ServingStatus::Serving as i32) {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, Some(ServingStatus::Serving as i32), "{service:?}");
    }
    let err = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_services_in_v1alpha_and_v1() {
    let app = spawn_app().await;
    let ch = channel(app.addr).await;

    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReq;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let mut alpha = AlphaClient::new(ch.clone());
    let mut stream = alpha
        .server_reflection_info(tokio_stream::iter(vec![AlphaReq {
            host: String::new(),
            message_request: Some(AlphaRequest::ListServices(String::new())),
        }]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(AlphaResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection response {resp:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for want in [
        "grpc.health.v1.Health",
        "tradewatch.v1.IndicatorService",
        "tradewatch.v1.ProgramService",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut v1 = ServerReflectionClient::new(ch);
    let mut stream = v1
        .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "google.rpc.BadRequest".into(),
            )),
        }]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    assert!(
        matches!(resp.message_response, Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "error-detail types are resolvable so that grpcurl can print them: {resp:?}"
    );
}

/// Whether the server at `port` answers its health check with SERVING.
async fn serving(port: u16) -> bool {
    let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "tradewatch.v1.ProgramService".into(),
        })
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// Waits until the binary `server` (its log in `log`) answers SERVING on `port`, failing
/// the test if it exits first or takes longer than `secs`.
async fn wait_until_serving(
    port: u16,
    server: &mut std::process::Child,
    log: &std::path::Path,
    secs: u64,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !serving(port).await {
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(std::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The binary on the private cluster of `dir` (DATABASE_URL unset).
fn binary(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("TRADEWATCH_DATA_DIR")
        .stdin(std::process::Stdio::null());
    cmd
}

/// `keys create`, `migrate` and `seed` run beside a server on its private cluster use
/// that cluster and leave it running (they used to stop it: the server then answered
/// UNAVAILABLE until restarted), and a second server on the same data folder refuses
/// before touching anything, naming the running one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_beside_a_server_leave_its_cluster_running_and_a_second_server_refuses() {
    let dir = std::env::temp_dir().join(format!("tw-beside-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = dir.with_extension("log");
    let mut server = binary(
        &dir,
        &["--listen", &listen, "--metrics-listen", "off", "--no-seed"],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .expect("start the server");
    wait_until_serving(port, &mut server, &log, 90).await;
    for args in [
        &["keys", "create", "--role", "viewer"][..],
        &["migrate"][..],
        &["seed"][..],
    ] {
        let out = binary(&dir, args).output().expect("run the command");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The server's cluster is still up: health stays SERVING, a call is answered.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            serving(port).await,
            "after {args:?}: the server lost its database"
        );
        let channel = Channel::from_shared(format!("http://{listen}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let listed =
            tradewatch::proto::v1::program_service_client::ProgramServiceClient::new(channel)
                .list_programs(tradewatch::proto::v1::ListProgramsRequest::default())
                .await;
        assert!(listed.is_ok(), "after {args:?}: {listed:?}");
    }
    // A second server on the same folder refuses, naming the first, and leaves it alone.
    let second = binary(&dir, &["--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("run a second server");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "another tradewatch server (pid {} gRPC {listen})",
            server.id()
        )),
        "{stderr}"
    );
    // Once, in one readable sentence.
    assert_eq!(
        stderr.matches("another tradewatch server").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("give this one another --data-dir"),
        "{stderr}"
    );
    assert!(serving(port).await, "the second server disturbed the first");

    // The server stops its cluster when it ends (SIGTERM: a graceful stop).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !dir.join("pgdata/postmaster.pid").exists(),
        "the server left its cluster running"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_file(&log).ok();
}

/// `cargo run --release` as root from a checkout in a 0700 folder (root's home in a
/// container): PostgreSQL runs as an unprivileged user, which cannot reach
/// `./.tradewatch/pgdata` there, so the cluster lives under /var/lib/tradewatch and the
/// log says where (issue 11, item 1). The real binary, started in such a folder with the
/// default data folder. Only meaningful as root; elsewhere the folder is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_in_a_0700_folder_the_private_cluster_runs_where_postgres_can_reach_it() {
    use std::os::unix::fs::PermissionsExt as _;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root: nothing to check");
        return;
    }
    let home = std::env::temp_dir().join(format!("tw-home-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = free_port();
    let log = home.with_extension("log");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "off",
            "--no-seed",
        ])
        .current_dir(&home)
        .env_remove("DATABASE_URL")
        .env_remove("TRADEWATCH_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the server");
    wait_until_serving(port, &mut server, &log, 120).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let expected = format!(
        "the private PostgreSQL cluster lives in {}/tradewatch-",
        tradewatch::embedded_pg::RELOCATED_ROOT
    );
    assert!(text.contains(&expected), "{text}");
    let relocated: std::path::PathBuf = text
        .split(&expected[..expected.len() - "tradewatch-".len()])
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|p| std::path::Path::new(tradewatch::embedded_pg::RELOCATED_ROOT).join(p))
        .unwrap();
    assert!(
        relocated.join("pgdata/PG_VERSION").exists(),
        "{}",
        relocated.display()
    );
    // The folder itself keeps the server's lock, not the cluster.
    assert!(home.join(".tradewatch/serve.lock").exists());
    assert!(!home.join(".tradewatch/pgdata/PG_VERSION").exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(server.wait().unwrap().success());
    assert!(
        !relocated.join("pgdata/postmaster.pid").exists(),
        "left running"
    );
    std::fs::remove_dir_all(&relocated).ok();
    std::fs::remove_dir_all(&home).ok();
    std::fs::remove_file(&log).ok();
}

//! TLS to PostgreSQL (feature `postgres-tls`, issue 11): a server that refuses plain
//! connections accepts Rush's when `PostgresTls::Required` names the certificate
//! authority that signed its certificate, and Rush refuses a server whose certificate
//! that authority did not sign. Certificates come from the `openssl` command.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/counter.rs"]
mod counter;
#[path = "support/postgres_server.rs"]
mod postgres_server;

use counter::Counter;

use rush_store::{Backend, PostgresConfig, PostgresManager, PostgresTls, Store};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn openssl(args: &[&str], at: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(at)
        .output()
        .expect("the openssl command");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A certificate authority `<name>.crt` / `<name>.key` in `at`.
fn authority(at: &Path, name: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=rush test authority",
            "-keyout",
            &key,
            "-out",
            &crt,
        ],
        at,
    );
}

#[test]
fn a_tls_only_server_takes_rush_with_the_right_authority_and_not_with_another() {
    if Command::new("openssl").arg("version").output().is_err() {
        println!("skipped: no openssl command to make test certificates");
        return;
    }
    if std::env::var("RUSH_TEST_POSTGRES_URL").is_ok() {
        println!("skipped: RUSH_TEST_POSTGRES_URL names a server this test cannot configure");
        return;
    }
    let certificates = tempfile::tempdir().unwrap();
    let at = certificates.path();
    authority(at, "ca");
    authority(at, "other");
    let Some(server) = postgres_server::start_with(|data| {
        openssl(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
            at,
        );
        std::fs::write(at.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.crt",
            ],
            at,
        );
        for file in ["server.crt", "server.key"] {
            let to = data.join(file);
            std::fs::copy(at.join(file), &to).unwrap();
            postgres_server::give_to_postgres(&to);
        }
        let status = Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status()
            .unwrap();
        assert!(status.success());
        // Only TLS connections from 127.0.0.1 (the test's socket folder stays open).
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key".into()
    }) else {
        return;
    };

    // A plain connection is refused: whatever connects below speaks TLS.
    let plain = PostgresManager::connect(&server.url, "tls");
    assert!(plain.is_err(), "a plain connection was accepted");

    let mut config = PostgresConfig::new(&server.url, "tls");
    config.tls = PostgresTls::Required {
        ca_file: at.join("ca.crt"),
    };
    let engine: Arc<dyn Backend> = Arc::new(PostgresManager::open(config.clone()).unwrap());
    let mut store = Store::<Counter>::new("c", "e", engine.clone(), None, false).unwrap();
    store.persist(&5).unwrap();
    let again = Store::<Counter>::new("c", "e", engine, None, false).unwrap();
    assert_eq!(again.recover().unwrap().unwrap().total, 5);

    // Another authority: the server's certificate is not trusted.
    config.tls = PostgresTls::Required {
        ca_file: at.join("other.crt"),
    };
    let refused = PostgresManager::open(config.clone());
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    // A missing authority file is a clear error naming it.
    config.tls = PostgresTls::Required {
        ca_file: at.join("missing.crt"),
    };
    let error = PostgresManager::open(config).unwrap_err().to_string();
    assert!(error.contains("missing.crt"), "{error}");
}

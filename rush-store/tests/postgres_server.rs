//! The throwaway PostgreSQL server the PostgreSQL tests run on: it starts, accepts a
//! connection with durable commits, and is gone (process and folder) once dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/postgres_server.rs"]
mod postgres_server;

#[tokio::test]
async fn a_throwaway_server_starts_serves_and_goes_away() {
    let Some(server) = postgres_server::start() else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(&server.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let row = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "on");
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);
    let _ = connection.await;
    if let Some(pid) = server.pid {
        drop(server);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "still running"
        );
    }
}

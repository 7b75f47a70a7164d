//! Starts a stock aquadoggo 0.8.1 node for the interop check: SQLite file, HTTP on the given port,
//! mDNS off, no peers allowed (nothing is replicated to or from the outside), a fresh key pair.
//!
//! Usage: aquadoggo-runner DATABASE_FILE HTTP_PORT BLOBS_DIR
//!
//! aquadoggo binds HTTP on 0.0.0.0 and falls back to a random port when the given one is taken; it
//! then prints "Go to http://0.0.0.0:PORT/graphql" on stdout, which the test fixture reads. The runner
//! prints "runner ready" once `Node::start` returned and stops the node when its stdin closes, so it
//! never outlives the test process that started it.

use std::path::PathBuf;

use aquadoggo::{AllowList, Configuration, NetworkConfiguration, Node};
use p2panda_rs::identity::KeyPair;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: aquadoggo-runner DATABASE_FILE HTTP_PORT BLOBS_DIR");
        std::process::exit(2);
    }
    let http_port: u16 = args[2].parse().expect("HTTP_PORT must be a port number");

    let network = NetworkConfiguration {
        mdns: false,
        // Port 0: the OS picks one; nobody dials it since no peer is allowed.
        port: 0,
        allow_peer_ids: AllowList::Set(Vec::new()),
        ..NetworkConfiguration::default()
    };
    let config = Configuration {
        allow_schema_ids: AllowList::Wildcard,
        database_url: format!("sqlite:{}", args[1]),
        database_max_connections: 8,
        http_port,
        blobs_base_path: PathBuf::from(&args[3]),
        worker_pool_size: 4,
        network,
    };

    let node = Node::start(KeyPair::new(), config).await;
    println!("runner ready");

    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    tokio::select! {
        _ = async { while let Ok(n) = stdin.read(&mut buffer).await { if n == 0 { break; } } } => {}
        _ = node.on_exit() => { eprintln!("a node service stopped"); }
    }
    node.shutdown().await;
}

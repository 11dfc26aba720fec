//! An operator reaches a service behind TLS with the CA's certificate and the key in a
//! file, as on a cluster; without the CA the certificate is refused.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::helpers::{SOCIAL_AGENT_KEY, Stack};

#[tokio::test]
async fn an_operator_reaches_the_service_over_tls_with_a_ca_file_and_a_key_file() {
    let stack = Stack::start().await;
    let ticket = stack
        .insert_ticket("o-citizen-tls", "social-security", "公交卡充值失败")
        .await;
    let dir = std::env::temp_dir().join(format!("govwx-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_pem, config) = server_tls();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{SOCIAL_AGENT_KEY}\n")).unwrap();
    let port = tls_proxy(config, stack.grpc_port()).await;
    let addr = format!("https://127.0.0.1:{port}");

    let listed = stack
        .command()
        .args(["--interaction-addr", &addr, "--ca-file"])
        .arg(&ca_file)
        .arg("--key-file")
        .arg(&key_file)
        .args(["tickets", "list"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        stdout.contains(&ticket) && stdout.contains("公交卡充值失败"),
        "{stdout}"
    );

    // Without the CA, the private certificate is not trusted: nothing is sent.
    let refused = stack
        .command()
        .args(["--interaction-addr", &addr, "--key-file"])
        .arg(&key_file)
        .args(["tickets", "list"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.starts_with(&format!("govwx: cannot reach interaction-svc at {addr}")),
        "{stderr}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
    stack.stop().await;
}

/// A CA (PEM) and a server configuration with a certificate it signed for 127.0.0.1,
/// speaking HTTP/2 as gRPC needs.
fn server_tls() -> (String, ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "govwx test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    (ca.pem(), config)
}

/// Terminates TLS on a port of its own and forwards to `backend` in plaintext, as an
/// ingress in front of the service would; returns the port.
async fn tls_proxy(config: ServerConfig, backend: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake (the no-CA run) just ends this connection.
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let mut server = TcpStream::connect(("127.0.0.1", backend)).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    port
}

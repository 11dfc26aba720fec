//! A service provisions the streams it reads or writes at start-up, and no other:
//! a stream it does not use that cannot be provisioned does not keep it from starting.

use async_nats::jetstream;
use platform::nats::{self, DEADLETTER, INTERACTION, StreamSpec, WECHAT_INBOUND};
use platform::service::{ServiceConfig, ServiceDefaults, ServiceRuntime, StartupError};
use platform::testing::{TestDb, TestNats, service_env};

static TEST_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "platform-test",
    database: "platform_test",
    grpc_port: 0,
    admin_port: 0,
};

/// What the test service reads and writes: inbound events, and its dead letters.
const NEEDED: [StreamSpec; 2] = [WECHAT_INBOUND, DEADLETTER];

/// Makes `spec` impossible to provision in the test's namespace, as a stream that stalls
/// or that the server refuses would: another stream already holds one of its subjects,
/// so JetStream refuses to create it ("subjects overlap with an existing stream").
async fn block(js: &jetstream::Context, test_nats: &TestNats, spec: StreamSpec) {
    let ns = &test_nats.namespace;
    let taken = spec.subjects.replace('>', "city.squatted");
    js.create_stream(jetstream::stream::Config {
        name: ns.name(&format!("{}_SQUATTER", spec.name)),
        subjects: vec![ns.subject(&taken)],
        ..Default::default()
    })
    .await
    .unwrap();
    let refused = nats::provision_streams(js, ns, &[spec]).await.unwrap_err();
    assert!(
        refused.to_string().contains(&ns.name(spec.name)),
        "{refused}"
    );
}

async fn start(test_db: &TestDb, test_nats: &TestNats) -> Result<ServiceRuntime, StartupError> {
    let env = service_env(
        test_db,
        test_nats,
        [("API_KEYS", "ops:admin:ops-key-123456")],
    );
    let config = ServiceConfig::from_env(&env, DEFAULTS).unwrap();
    ServiceRuntime::start("platform-test", config, &TEST_MIGRATOR, &NEEDED).await
}

#[tokio::test]
async fn a_stream_the_service_does_not_use_that_cannot_be_provisioned_does_not_stop_its_start() {
    let test_db = TestDb::new("platform");
    let test_nats = TestNats::new();
    let js = jetstream::new(test_nats.connect().await);
    block(&js, &test_nats, INTERACTION).await;

    let runtime = start(&test_db, &test_nats).await;
    let runtime = runtime.unwrap_or_else(|error| panic!("the service did not start: {error}"));
    for spec in NEEDED {
        js.get_stream(test_nats.namespace.name(spec.name))
            .await
            .unwrap_or_else(|error| panic!("{} not provisioned: {error}", spec.name));
    }
    assert!(
        js.get_stream(test_nats.namespace.name(INTERACTION.name))
            .await
            .is_err(),
        "a stream the service does not use was made"
    );
    drop(runtime);
}

#[tokio::test]
async fn a_needed_stream_that_cannot_be_provisioned_fails_the_start_naming_it() {
    let test_db = TestDb::new("platform");
    let test_nats = TestNats::new();
    let js = jetstream::new(test_nats.connect().await);
    block(&js, &test_nats, DEADLETTER).await;

    let Err(error) = start(&test_db, &test_nats).await else {
        panic!("the service started without its dead-letter stream");
    };
    assert!(
        error.to_string().starts_with(&format!(
            "cannot provision stream {}:",
            test_nats.namespace.name("DEADLETTER")
        )),
        "{error}"
    );
}

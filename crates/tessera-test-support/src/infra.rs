//! The real servers of `scripts/test-infra`, found through environment variables
//! (`eval "$(scripts/test-infra env)"` sets them).

/// Makes a missing server a failure instead of a skip.
pub const REQUIRE: &str = "TESSERA_REQUIRE_INFRA";
/// A MongoDB-compatible server: `mongodb://host:port/`.
pub const MONGO_URL: &str = "TESSERA_TEST_MONGO_URL";
/// Kafka-compatible brokers: `host:port[,host:port…]`.
pub const KAFKA_SERVERS: &str = "TESSERA_TEST_KAFKA_SERVERS";
/// An S3-compatible server: `http://host:port`.
pub const S3_URL: &str = "TESSERA_TEST_S3_URL";
/// The bucket both S3 servers start with.
pub const S3_BUCKET: &str = "TESSERA_TEST_S3_BUCKET";
/// An S3-compatible server that verifies SigV4 signatures (s3s-fs): `http://host:port`.
pub const S3S_URL: &str = "TESSERA_TEST_S3S_URL";
/// The only access key s3s-fs accepts.
pub const S3S_ACCESS_KEY: &str = "TESSERA_TEST_S3S_ACCESS_KEY";
/// Its secret key.
pub const S3S_SECRET_KEY: &str = "TESSERA_TEST_S3S_SECRET_KEY";
/// An OpenID provider's issuer: `http://host:port`.
pub const OIDC_ISSUER: &str = "TESSERA_TEST_OIDC_ISSUER";
/// A single-node Slurm's `slurm.conf` (its commands need it as `SLURM_CONF`).
pub const SLURM_CONF: &str = "TESSERA_TEST_SLURM_CONF";
/// That Slurm's REST daemon: `http://host:port`.
pub const SLURMRESTD_URL: &str = "TESSERA_TEST_SLURMRESTD_URL";

/// Whether `TESSERA_REQUIRE_INFRA=1`.
pub fn required() -> bool {
    crate::flag(REQUIRE)
}

/// The value of `var` (trimmed) when it is set and not blank. Otherwise the test should
/// return: this prints `SKIPPED: <test>: <var> is not set (scripts/test-infra up)`, or fails
/// the test under `TESSERA_REQUIRE_INFRA=1`.
pub fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => {
            crate::skip_or_fail(
                REQUIRE,
                &crate::current_test(),
                &format!(
                    "{var} is not set (scripts/test-infra up; eval \"$(scripts/test-infra env)\")"
                ),
            );
            None
        }
    }
}

/// For a server that is configured but unusable (it does not answer, lacks a feature):
/// prints `SKIPPED: <test>: <reason>`, or fails the test under `TESSERA_REQUIRE_INFRA=1`.
/// The caller returns afterwards.
pub fn skip(test: &str, reason: &str) {
    crate::skip_or_fail(REQUIRE, test, reason);
}

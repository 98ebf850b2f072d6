//! The collection of stored refresh tokens.

use tessera_kit::dao::{CollectionSpec, FieldKind};

/// The collection name of the original's table.
pub const DEFAULT_COLLECTION: &str = "refresh_token";

/// The spec of the refresh-token collection `name`: id `id` (a UUID), `jti` unique.
pub fn refresh_token_spec(name: &str) -> CollectionSpec {
    CollectionSpec::new(name, "id")
        .unique("jti")
        .kind("id", FieldKind::Uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_valid_and_makes_jti_unique() {
        let spec = refresh_token_spec(DEFAULT_COLLECTION);
        assert!(spec.validate().is_ok());
        assert_eq!(spec.unique_fields, vec!["jti".to_owned()]);
        assert_eq!(spec.id_field, "id");
    }
}

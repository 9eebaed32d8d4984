//! Owns the `projection_meta` tree: for each projection name, the version its active model was
//! built with and the name of the generation tree that holds it. Generation trees are named
//! `proj/<name>/v<version>/g<generation>`; a consistency check builds into
//! `proj/<name>/scratch`.
//!
//! | tree              | key              | value                                     |
//! |-------------------|------------------|-------------------------------------------|
//! | `projection_meta` | projection name  | MessagePack [`MetaRecord`]                |

use serde::{Deserialize, Serialize};

use super::error::ProjectionError;
use super::rows;

/// Name of the tree of projection pointers.
pub const META_TREE: &str = "projection_meta";

/// Where a projection's active model lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRecord {
    /// The projection version the model was built with.
    pub version: u32,
    /// The generation number (grows by one per rebuild).
    pub generation: u64,
    /// The sled tree holding the model.
    pub tree: String,
}

/// The tree name of generation `generation` of `name` at `version`.
pub fn tree_name(name: &str, version: u32, generation: u64) -> String {
    format!("proj/{name}/v{version}/g{generation}")
}

/// The tree name a consistency check builds into.
pub fn scratch_tree_name(name: &str) -> String {
    format!("proj/{name}/scratch")
}

/// The prefix shared by every tree of `name`.
pub fn tree_prefix(name: &str) -> String {
    format!("proj/{name}/")
}

/// The record of `name`, if any.
pub fn load(meta: &sled::Tree, name: &str) -> Result<Option<MetaRecord>, ProjectionError> {
    let bytes = meta
        .get(name.as_bytes())
        .map_err(|e| ProjectionError::sled("read projection meta", e))?;
    bytes
        .map(|b| rows::decode(&b, "projection meta record"))
        .transpose()
}

/// Points `name` at `record` (one atomic write).
pub fn save(meta: &sled::Tree, name: &str, record: &MetaRecord) -> Result<(), ProjectionError> {
    meta.insert(name.as_bytes(), rows::encode(record)?)
        .map_err(|e| ProjectionError::sled("write projection meta", e))?;
    Ok(())
}

/// Drops every tree of `name` other than `keep` (leftovers of an interrupted rebuild or check).
pub fn drop_leftovers(db: &sled::Db, name: &str, keep: &str) -> Result<(), ProjectionError> {
    let prefix = tree_prefix(name);
    for tree in db.tree_names() {
        if tree.starts_with(prefix.as_bytes()) && &tree[..] != keep.as_bytes() {
            db.drop_tree(&tree)
                .map_err(|e| ProjectionError::sled("drop leftover projection tree", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_records() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(tree_name("timeline", 3, 7), "proj/timeline/v3/g7");
        let db = sled::Config::new().temporary(true).open()?;
        let meta = db.open_tree(META_TREE)?;
        assert_eq!(load(&meta, "x")?, None);
        let record = MetaRecord {
            version: 2,
            generation: 5,
            tree: tree_name("x", 2, 5),
        };
        save(&meta, "x", &record)?;
        assert_eq!(load(&meta, "x")?, Some(record));
        db.open_tree("proj/x/v1/g4")?;
        db.open_tree("proj/x/v2/g5")?;
        db.open_tree("proj/xy/v1/g1")?;
        drop_leftovers(&db, "x", "proj/x/v2/g5")?;
        let names: Vec<String> = db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .filter(|n| n.starts_with("proj/"))
            .collect();
        assert!(names.contains(&"proj/x/v2/g5".to_owned()));
        assert!(names.contains(&"proj/xy/v1/g1".to_owned()));
        assert!(!names.contains(&"proj/x/v1/g4".to_owned()));
        meta.insert("bad", &[0xc1][..])?;
        assert!(load(&meta, "bad").is_err());
        Ok(())
    }
}

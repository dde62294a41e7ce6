//! In-process access to a cluster's objects for the simulated controllers and ecosystem
//! installation. Writes take the same path as API requests (validation, admission, managed
//! fields, events, garbage collection), under the field manager given, without HTTP.

use crate::Cluster;
use crate::kinds::ResourceType;
use crate::patch::PatchType;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Propagation, Target, WriteOptions};
use serde_json::{Value, json};
use std::sync::Arc;

/// A cluster seen by one field manager.
pub struct Local<'a> {
    cluster: &'a Cluster,
    manager: &'a str,
}

/// The group and kind of an object, from its `apiVersion` and `kind`.
pub fn group_kind(obj: &Value) -> (String, String) {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    (
        group.to_string(),
        obj["kind"].as_str().unwrap_or_default().to_string(),
    )
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or_default()
}

impl<'a> Local<'a> {
    pub fn new(cluster: &'a Cluster, manager: &'a str) -> Local<'a> {
        Local { cluster, manager }
    }

    pub fn cluster(&self) -> &Cluster {
        self.cluster
    }

    /// The served type of `group`/`kind`, if the cluster has it.
    pub fn resource_type(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.cluster
            .store()
            .types()
            .iter()
            .find(|t| t.group == group && t.kind == kind && !t.terminating)
            .cloned()
    }

    pub fn get(&self, group: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = self.resource_type(group, kind)?;
        let target = Target {
            rt: &rt,
            version: &rt.versions[0],
            namespace,
        };
        self.cluster.store().get(&target, name).ok()
    }

    /// Every object of a kind, in every namespace, in key order.
    pub fn list(&self, group: &str, kind: &str) -> Vec<Value> {
        let Some(rt) = self.resource_type(group, kind) else {
            return Vec::new();
        };
        let store = self.cluster.store();
        store
            .list_objects(&rt, None)
            .map(|(_, o)| crate::store::Store::present(o, &rt, &rt.versions[0]))
            .collect()
    }

    fn options(&self, force: bool) -> WriteOptions {
        WriteOptions {
            field_manager: Some(self.manager.to_string()),
            force,
            user_agent: self.manager.to_string(),
            ..WriteOptions::default()
        }
    }

    /// Runs a write against the object's type, then wakes watches if it changed anything.
    fn write(
        &self,
        obj: &Value,
        f: impl FnOnce(&mut crate::store::Store, &Target<'_>) -> Result<crate::store::Outcome, ApiError>,
    ) -> Result<Value, ApiError> {
        let (group, kind) = group_kind(obj);
        let rt = self
            .resource_type(&group, &kind)
            .ok_or_else(ApiError::not_found_path)?;
        let version = obj["apiVersion"]
            .as_str()
            .and_then(|v| v.rsplit('/').next())
            .filter(|v| rt.versions.iter().any(|s| s == v))
            .unwrap_or(&rt.versions[0])
            .to_string();
        let target = Target {
            rt: &rt,
            version: &version,
            namespace: namespace_of(obj),
        };
        let (outcome, changed) = {
            let mut store = self.cluster.store();
            let before = store.resource_version();
            let outcome = f(&mut store, &target)?;
            (outcome, store.resource_version() != before)
        };
        if changed {
            self.cluster.changed();
        }
        Ok(outcome.body)
    }

    pub fn create(&self, obj: &Value) -> Result<Value, ApiError> {
        let opts = self.options(false);
        self.write(obj, |store, target| {
            store.create(target, obj.clone(), &opts)
        })
    }

    /// Server-side apply of `obj`, forcing conflicts (controllers own what they write).
    pub fn apply(&self, obj: &Value) -> Result<Value, ApiError> {
        let opts = self.options(true);
        self.write(obj, |store, target| {
            store.patch(
                target,
                name_of(obj),
                PatchType::Apply,
                obj.clone(),
                &opts,
                "",
            )
        })
    }

    /// Replaces an object's status (a write to the status subresource).
    pub fn set_status(&self, obj: &Value, status: Value) -> Result<Value, ApiError> {
        if obj.get("status") == Some(&status) {
            return Ok(obj.clone());
        }
        let mut body = obj.clone();
        body["status"] = status;
        let opts = self.options(false);
        self.write(obj, |store, target| {
            store.update(target, name_of(obj), body, &opts, "status")
        })
    }

    /// Replaces an object (metadata and spec), e.g. to add or remove a finalizer.
    pub fn update(&self, obj: &Value) -> Result<Value, ApiError> {
        let opts = self.options(false);
        self.write(obj, |store, target| {
            store.update(target, name_of(obj), obj.clone(), &opts, "")
        })
    }

    /// Deletes an object in the background; a missing one is not an error.
    pub fn delete(&self, obj: &Value) -> Result<(), ApiError> {
        let opts = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..DeleteOptions::default()
        };
        match self.write(obj, |store, target| {
            store.delete(target, name_of(obj), &opts, false)
        }) {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds a finalizer if it is missing (and the object is not being deleted).
    pub fn add_finalizer(&self, obj: &Value, finalizer: &str) -> Result<Value, ApiError> {
        let list = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.iter().any(|f| f == finalizer) || obj["metadata"].get("deletionTimestamp").is_some()
        {
            return Ok(obj.clone());
        }
        let mut body = obj.clone();
        let mut list = list;
        list.push(json!(finalizer));
        body["metadata"]["finalizers"] = Value::Array(list);
        self.update(&body)
    }

    /// Removes a finalizer if present.
    pub fn remove_finalizer(&self, obj: &Value, finalizer: &str) -> Result<(), ApiError> {
        let list = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !list.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        let mut body = obj.clone();
        body["metadata"]["finalizers"] =
            Value::Array(list.into_iter().filter(|f| f != finalizer).collect());
        match self.update(&body) {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

//! Installing an ecosystem of the catalogue ([`flotilla_ecosystems`]) into a sandbox
//! cluster: its CRDs and seed objects. What the ecosystem's webhooks and controllers do is
//! in [`crate::admission`] and [`crate::controllers`], registered per ecosystem.

use crate::Cluster;
use crate::local::Local;

pub use flotilla_ecosystems::Ecosystem;

/// Installs an ecosystem's CRDs and seed objects into a cluster. Idempotent: what exists is
/// left as it is. The error names what could not be created and why.
pub fn install(cluster: &Cluster, eco: Ecosystem) -> Result<(), String> {
    let local = Local::new(cluster, "flotilla-sandbox");
    for crd in eco.crds() {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        if local
            .get("apiextensions.k8s.io", "CustomResourceDefinition", "", name)
            .is_none()
        {
            local
                .create(crd)
                .map_err(|e| format!("creating CRD {name}: {}", e.message))?;
        }
    }
    for obj in eco.seeds() {
        let (group, kind) = crate::local::group_kind(&obj);
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if local.get(&group, &kind, "", name).is_none() {
            local
                .create(&obj)
                .map_err(|e| format!("creating {kind} {name}: {}", e.message))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::from_crd;

    #[test]
    fn every_ecosystem_expands_to_crds_the_sandbox_serves() {
        for eco in Ecosystem::ALL {
            for crd in eco.crds() {
                let rt =
                    from_crd(crd).unwrap_or_else(|e| panic!("{}: {e}", crd["metadata"]["name"]));
                assert!(!rt.versions.is_empty());
            }
        }
    }
}

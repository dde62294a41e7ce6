//! Checks across resources: after `validate` (with references unknown) and after planning
//! (with planned values), each provider sees every resource of the configuration and every
//! provider configuration, and reports what no single resource shows (a Karmada policy
//! naming a member nobody joins, a template on a control plane that no policy selects).

use crate::{ProviderError, Value};

/// One resource instance as the review sees it.
#[derive(Debug, Clone)]
pub struct ReviewedResource<'a> {
    /// Its address (`module.a.kube_manifest.web`).
    pub address: String,
    /// Its type (`kube_manifest`).
    pub type_name: &'a str,
    /// The provider configuration it uses (`provider.kube.karmada`).
    pub provider: String,
    /// Its configuration (validate) or planned value (plan); may hold unknowns.
    pub value: &'a Value,
}

/// One provider configuration as the review sees it.
#[derive(Debug, Clone)]
pub struct ReviewedProvider {
    /// Its address (`provider.kube.karmada`).
    pub address: String,
    /// The provider's name (`kube`).
    pub name: String,
    /// The block's arguments; may hold unknowns.
    pub config: Value,
}

/// Everything a review sees.
#[derive(Debug, Clone, Default)]
pub struct Review<'a> {
    /// Every resource instance, data sources excluded.
    pub resources: Vec<ReviewedResource<'a>>,
    /// Every provider configuration.
    pub providers: Vec<ReviewedProvider>,
}

/// What a review found about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The index of the resource in [`Review::resources`].
    pub resource: usize,
    /// What is wrong; `attribute` points into the resource's configuration.
    pub error: ProviderError,
    /// A warning (the plan goes on) rather than an error.
    pub warning: bool,
}

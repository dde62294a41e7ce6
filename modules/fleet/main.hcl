# A fleet: a set of clusters, optionally joined to a Karmada control plane, with Flux on
# every member so addons can be installed as Helm releases.

locals {
  all = { for c in var.clusters : c.name => c }
  members = {
    for name, c in local.all : name => c
    if alltrue([for k, v in var.selector : lookup(c.labels, k, null) == v])
  }
  karmada = var.control_plane != null
}

provider "karmada" {
  alias          = "control_plane"
  for_each       = local.karmada ? { control_plane = var.control_plane.connection } : {}
  sandbox        = each.value.sandbox
  kubeconfig_raw = each.value.kubeconfig_raw
}

provider "kube" {
  alias          = "control_plane"
  for_each       = local.karmada ? { control_plane = var.control_plane.connection } : {}
  sandbox        = each.value.sandbox
  kubeconfig_raw = each.value.kubeconfig_raw
}

provider "kube" {
  alias          = "member"
  for_each       = local.members
  sandbox        = each.value.connection.sandbox
  kubeconfig_raw = each.value.connection.kubeconfig_raw
}

# Each member joins the control plane with its own kubeconfig (Push mode), labelled with the
# cluster's labels, the fleet's, and `flotilla.dev/fleet`.
resource "karmada_cluster" "member" {
  for_each   = local.karmada ? local.members : {}
  provider   = karmada.control_plane["control_plane"]
  name       = each.key
  kubeconfig = each.value.kubeconfig
  labels     = merge(each.value.labels, var.labels, { "flotilla.dev/fleet" = var.name })
  spec       = {}
}

# The control plane holds policies as templates for the members: it serves their kind.
resource "kube_crd" "control_plane_policies" {
  count    = local.karmada ? 1 : 0
  provider = kube.control_plane["control_plane"]
  name     = "clusterpolicies.kyverno.io"
  spec     = yamldecode(file("${path.module}/templates/clusterpolicies.yaml"))
}

# Flux on each member: its namespace, the two kinds addons use, and the controllers.
resource "kube_namespace" "flux" {
  for_each = var.flux ? local.members : {}
  provider = kube.member[each.key]
  name     = "flux-system"
  labels   = { "app.kubernetes.io/part-of" = "flux" }
}

resource "kube_crd" "helm_repository" {
  for_each = var.flux ? local.members : {}
  provider = kube.member[each.key]
  name     = "helmrepositories.source.toolkit.fluxcd.io"
  spec     = yamldecode(file("${path.module}/flux/helmrepositories.yaml"))
}

resource "kube_crd" "helm_release" {
  for_each = var.flux ? local.members : {}
  provider = kube.member[each.key]
  name     = "helmreleases.helm.toolkit.fluxcd.io"
  spec     = yamldecode(file("${path.module}/flux/helmreleases.yaml"))
}

resource "kube_manifest" "flux_service_account" {
  for_each = var.flux ? local.members : {}
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "v1"
    kind       = "ServiceAccount"
    metadata   = { name = "flux", namespace = kube_namespace.flux[each.key].name }
  }
}

resource "kube_manifest" "flux_binding" {
  for_each = var.flux ? local.members : {}
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "rbac.authorization.k8s.io/v1"
    kind       = "ClusterRoleBinding"
    metadata   = { name = "flux-reconciler" }
    roleRef    = { apiGroup = "rbac.authorization.k8s.io", kind = "ClusterRole", name = "cluster-admin" }
    subjects   = [{ kind = "ServiceAccount", name = "flux", namespace = kube_namespace.flux[each.key].name }]
  }
}

resource "kube_manifest" "flux_controllers" {
  for_each = var.flux ? {
    for pair in setproduct(keys(local.members), ["source-controller", "helm-controller"]) :
    "${pair[0]}/${pair[1]}" => { member = pair[0], controller = pair[1] }
  } : {}
  provider = kube.member[each.value.member]
  manifest = {
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata = {
      name      = each.value.controller
      namespace = kube_namespace.flux[each.value.member].name
      labels    = { "app.kubernetes.io/part-of" = "flux" }
    }
    spec = {
      replicas = 1
      selector = { matchLabels = { app = each.value.controller } }
      template = {
        metadata = { labels = { app = each.value.controller } }
        spec = {
          serviceAccountName = kube_manifest.flux_service_account[each.value.member].manifest.metadata.name
          containers = [{
            name  = "manager"
            image = "ghcr.io/fluxcd/${each.value.controller}:${each.value.controller == "helm-controller" ? var.helm_controller_version : var.flux_version}"
            args  = ["--watch-all-namespaces", "--log-level=info"]
          }]
        }
      }
    }
  }
}

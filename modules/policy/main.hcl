# A Kyverno ClusterPolicy across a fleet: propagated by the fleet's Karmada control plane when
# it has one (a ClusterPropagationPolicy placing it on the selected members), applied to each
# selected member otherwise.

locals {
  presets = {
    "require-requests-limits" = [{
      name  = "require-requests-limits"
      match = { any = [{ resources = { kinds = ["Pod"] } }] }
      validate = {
        message = "Every container needs CPU and memory requests and a memory limit."
        pattern = {
          spec = {
            containers = [{
              resources = {
                requests = { cpu = "?*", memory = "?*" }
                limits   = { memory = "?*" }
              }
            }]
          }
        }
      }
    }]
    "pod-security-baseline" = [{
      name     = "pod-security-baseline"
      match    = { any = [{ resources = { kinds = ["Pod"] } }] }
      validate = { podSecurity = { level = "baseline", version = "latest" } }
    }]
    "pod-security-restricted" = [{
      name     = "pod-security-restricted"
      match    = { any = [{ resources = { kinds = ["Pod"] } }] }
      validate = { podSecurity = { level = "restricted", version = "latest" } }
    }]
  }
  rules = var.rules != null ? var.rules : lookup(local.presets, coalesce(var.preset, "require-requests-limits"), [])

  policy = {
    apiVersion = "kyverno.io/v1"
    kind       = "ClusterPolicy"
    metadata = {
      name        = var.name
      labels      = { "flotilla.dev/policy" = var.name }
      annotations = { "policies.kyverno.io/title" = var.name }
    }
    spec = {
      validationFailureAction = var.mode == "enforce" ? "Enforce" : "Audit"
      background              = var.background
      rules                   = local.rules
    }
  }

  karmada = var.fleet.karmada
  direct  = local.karmada ? {} : { for name in module.select.names : name => var.fleet.members[name] }
}

provider "kube" {
  alias          = "control_plane"
  for_each       = local.karmada ? { control_plane = var.fleet.control_plane.connection } : {}
  sandbox        = each.value.sandbox
  kubeconfig_raw = each.value.kubeconfig_raw
}

provider "karmada" {
  alias          = "control_plane"
  for_each       = local.karmada ? { control_plane = var.fleet.control_plane.connection } : {}
  sandbox        = each.value.sandbox
  kubeconfig_raw = each.value.kubeconfig_raw
}

provider "kube" {
  alias          = "member"
  for_each       = local.direct
  sandbox        = each.value.connection.sandbox
  kubeconfig_raw = each.value.connection.kubeconfig_raw
}

# With Karmada: the policy as a resource template on the control plane (Kyverno does not run
# there, so nothing reports it Ready: no wait) ...
resource "kube_manifest" "template" {
  count    = local.karmada ? 1 : 0
  provider = kube.control_plane["control_plane"]
  manifest = local.policy
  wait     = false
}

# ... placed on the selected members.
resource "karmada_cluster_propagation_policy" "this" {
  count    = local.karmada ? 1 : 0
  provider = karmada.control_plane["control_plane"]
  name     = "policy-${var.name}"
  spec = {
    resourceSelectors = [{
      apiVersion = local.policy.apiVersion
      kind       = local.policy.kind
      name       = kube_manifest.template[0].manifest.metadata.name
    }]
    placement = {
      clusterAffinity = { clusterNames = module.select.names }
    }
  }
}

# Without Karmada: the policy on each selected member, ready when Kyverno serves it.
resource "kube_manifest" "member" {
  for_each = local.direct
  provider = kube.member[each.key]
  manifest = local.policy
}

module "select" {
  source   = "../select"
  fleet    = var.fleet
  members  = var.members
  selector = var.selector
  what     = "policy \"${var.name}\""
}

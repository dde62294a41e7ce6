# An addon: one Flux HelmRelease (and its HelmRepository) on each selected member of a fleet.
# The release is ready when Flux reports it Ready, so the addon's health is the apply's.

locals {
  # Charts flotilla knows, at versions tested with this release of the standard library.
  known = {
    istio      = { repository = "https://istio-release.storage.googleapis.com/charts", name = "istiod", version = "1.24.1", namespace = "istio-system" }
    volcano    = { repository = "https://volcano-sh.github.io/helm-charts", name = "volcano", version = "1.10.0", namespace = "volcano-system" }
    kubeedge   = { repository = "https://kubeedge.github.io/helm-charts", name = "cloudcore", version = "1.19.0", namespace = "kubeedge" }
    kyverno    = { repository = "https://kyverno.github.io/kyverno/", name = "kyverno", version = "3.3.4", namespace = "kyverno" }
    flagger    = { repository = "https://flagger.app", name = "flagger", version = "1.38.0", namespace = "flagger-system" }
    prometheus = { repository = "https://prometheus-community.github.io/helm-charts", name = "kube-prometheus-stack", version = "65.1.1", namespace = "monitoring" }
  }
  base      = lookup(local.known, var.name, null)
  chart     = var.chart != null ? var.chart : local.base
  namespace = coalesce(var.namespace, try(local.base.namespace, null), var.name)
  version   = var.version != null ? var.version : try(local.chart.version, null)

  # Nothing is planned for an addon without a chart (the `chart` output says why).
  members = local.chart == null ? {} : { for name in module.select.names : name => var.fleet.members[name] }
}

provider "kube" {
  alias          = "member"
  for_each       = local.members
  sandbox        = each.value.connection.sandbox
  kubeconfig_raw = each.value.connection.kubeconfig_raw
}

resource "kube_manifest" "repository" {
  for_each = local.members
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "source.toolkit.fluxcd.io/v1"
    kind       = "HelmRepository"
    metadata   = { name = var.name, namespace = "flux-system" }
    spec = {
      url      = local.chart.repository
      interval = "1h"
    }
  }

  lifecycle {
    precondition {
      condition     = var.fleet.flux
      error_message = "fleet ${var.fleet.name} has no Flux, which addons are installed with: set `flux = true` on the fleet."
    }
  }
}

resource "kube_manifest" "release" {
  for_each = local.members
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "helm.toolkit.fluxcd.io/v2"
    kind       = "HelmRelease"
    metadata = {
      name      = var.name
      namespace = "flux-system"
      labels    = { "flotilla.dev/addon" = var.name }
    }
    spec = {
      interval        = var.interval
      releaseName     = var.name
      targetNamespace = local.namespace
      chart = {
        spec = {
          chart   = local.chart.name
          version = local.version
          sourceRef = {
            kind      = "HelmRepository"
            name      = kube_manifest.repository[each.key].manifest.metadata.name
            namespace = "flux-system"
          }
        }
      }
      install = { createNamespace = true, remediation = { retries = 3 } }
      upgrade = { remediation = { retries = 3 } }
      values  = merge(var.values, lookup(var.member_values, each.key, {}))
    }
  }
}

module "select" {
  source   = "../select"
  fleet    = var.fleet
  members  = var.members
  selector = var.selector
  what     = "addon \"${var.name}\""
}

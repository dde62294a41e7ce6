# One application across a fleet: a Deployment on every selected member and, unless the
# strategy is `none`, a Flagger Canary over Istio routing that analyses each new revision.
# The members move in waves (`builtin_rollout.this`): the engine applies each member's
# objects, waits for its health gate (the Canary, or the Deployment with `none`), soaks, asks
# for approvals, and rolls back on failures beyond the budget.

locals {
  members = { for name in module.select.names : name => var.fleet.members[name] }
  labels  = { app = var.name, "app.kubernetes.io/name" = var.name, "flotilla.dev/rollout" = var.name }

  metrics = var.analysis.metrics != null ? var.analysis.metrics : [
    { name = "request-success-rate", interval = "1m", thresholdRange = { min = 99 } },
    { name = "request-duration", interval = "1m", thresholdRange = { max = 500 } },
  ]
  analysis = {
    canary = {
      interval   = var.analysis.interval
      threshold  = var.analysis.threshold
      stepWeight = var.analysis.step_weight
      maxWeight  = var.analysis.max_weight
      metrics    = local.metrics
      webhooks   = var.analysis.webhooks
    }
    blue_green = {
      interval   = var.analysis.interval
      threshold  = var.analysis.threshold
      iterations = var.analysis.iterations
      metrics    = local.metrics
      webhooks   = var.analysis.webhooks
    }
    ab = {
      interval   = var.analysis.interval
      threshold  = var.analysis.threshold
      iterations = var.analysis.iterations
      match      = var.analysis.match
      metrics    = local.metrics
      webhooks   = var.analysis.webhooks
    }
  }
}

provider "kube" {
  alias          = "member"
  for_each       = local.members
  sandbox        = each.value.connection.sandbox
  kubeconfig_raw = each.value.connection.kubeconfig_raw
}

resource "kube_namespace" "this" {
  for_each = var.create_namespace ? local.members : {}
  provider = kube.member[each.key]
  name     = var.namespace
  labels   = { "istio-injection" = "enabled" }
}

resource "kube_manifest" "deployment" {
  for_each = local.members
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata = {
      name      = var.name
      namespace = var.create_namespace ? kube_namespace.this[each.key].name : var.namespace
      labels    = local.labels
    }
    spec = {
      replicas = lookup(var.member_replicas, each.key, var.replicas)
      selector = { matchLabels = { app = var.name } }
      template = {
        metadata = { labels = local.labels }
        spec = {
          containers = [{
            name  = var.name
            image = var.image
            ports = [{ name = "http", containerPort = var.port }]
            env   = [for k in sort(keys(var.env)) : { name = k, value = var.env[k] }]
            resources = {
              requests = { cpu = var.resources.cpu, memory = var.resources.memory }
              limits   = { memory = var.resources.memory }
            }
          }]
        }
      }
    }
  }
}

# With Flagger the Canary makes the Services (NAME, NAME-primary, NAME-canary); without it
# the application gets a plain Service.
resource "kube_manifest" "service" {
  for_each = var.strategy == "none" ? local.members : {}
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "v1"
    kind       = "Service"
    metadata = {
      name      = var.name
      namespace = kube_manifest.deployment[each.key].manifest.metadata.namespace
      labels    = local.labels
    }
    spec = {
      selector = { app = var.name }
      ports    = [{ name = "http", port = var.port, targetPort = var.port }]
    }
  }
}

resource "kube_manifest" "canary" {
  for_each = var.strategy == "none" ? {} : local.members
  provider = kube.member[each.key]
  manifest = {
    apiVersion = "flagger.app/v1beta1"
    kind       = "Canary"
    metadata = {
      name      = var.name
      namespace = kube_manifest.deployment[each.key].manifest.metadata.namespace
      labels    = local.labels
    }
    spec = {
      provider  = "istio"
      targetRef = { apiVersion = "apps/v1", kind = "Deployment", name = var.name }
      service   = { port = var.port, targetPort = var.port }
      analysis  = local.analysis[var.strategy]
    }
  }
}

locals {
  names = sort(module.select.names)
  waves = var.waves != null ? var.waves : [{
    name     = "all", selector = null, members = null, max_concurrency = "100%", soak = "0s",
    approval = false, max_failures = 0
  }]
  wave_list = [for i, w in local.waves : {
    name = w.name != null ? w.name : "wave ${i + 1}"
    # The members the wave selects, or null: the rest.
    selected = w.selector == null && w.members == null ? null : [
      for m in local.names : m
      if(w.members == null ? true : contains(w.members, m)) && alltrue([for k, v in(w.selector == null ? {} : w.selector) : lookup(var.fleet.member_labels[m], k, null) == v])
    ]
    names           = w.members == null ? [] : w.members
    max_concurrency = w.max_concurrency
    soak            = w.soak
    approval        = w.approval
    max_failures    = w.max_failures
  }]
  # Each wave's members, the rest resolved (what other resources join a wave by).
  explicit = flatten([for w in local.wave_list : w.selected if w.selected != null])
  wave_members = { for w in local.wave_list : w.name => w.selected != null ? w.selected : [
    for m in local.names : m if !contains(local.explicit, m)
  ] }
}

resource "builtin_rollout" "this" {
  name  = var.name
  label = var.image
  revision = {
    image     = var.image
    replicas  = { for m in local.names : m => lookup(var.member_replicas, m, var.replicas) }
    port      = var.port
    env       = var.env
    resources = var.resources
    strategy  = var.strategy
    analysis  = var.strategy == "none" ? null : local.analysis[var.strategy]
  }
  members           = local.names
  waves             = local.wave_list
  max_failures      = var.max_failures
  on_failure        = var.on_failure
  on_change         = var.on_change
  progress_deadline = var.progress_deadline
  manages           = ["kube_namespace.this", "kube_manifest.deployment", "kube_manifest.service", "kube_manifest.canary"]
  gate              = var.strategy == "none" ? "kube_manifest.deployment" : "kube_manifest.canary"
  replicas          = { for m in local.names : m => lookup(var.member_replicas, m, var.replicas) }
  fleet_size        = length(var.fleet.member_names)
  checks = [for c in var.checks : {
    name = c.name
    data = c.http != null ? "builtin_http" : "kube_object"
    config = c.http != null ? {
      url             = c.http.url
      method          = c.http.method
      request_headers = c.http.headers
      request_timeout = c.http.timeout
      } : {
      api_version = c.object.api_version
      kind        = c.object.kind
      name        = c.object.name
      namespace   = c.object.namespace != null ? c.object.namespace : var.namespace
    }
    field  = c.http != null ? c.field : "object.${c.field}"
    equals = c.equals
    one_of = c.one_of
    min    = c.min
    max    = c.max
    wait   = c.wait
  }]
}

module "select" {
  source   = "../select"
  fleet    = var.fleet
  members  = var.members
  selector = var.selector
  what     = "rollout \"${var.name}\""
}

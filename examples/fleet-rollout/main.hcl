# A release moved through a fleet in waves: the canary cluster first, then the rest two at
# a time, each member gated on its Flagger canary succeeding for the new revision, a soak
# after each wave, and every touched member rolled back if one fails.

variable "checkout_version" {
  type    = string
  default = "1.4.0"
}

variable "approve_rest" {
  type        = bool
  default     = false
  description = "Stop before the second wave until `flotilla rollout approve checkout`."
}

# Four sandbox clusters; bj-1 takes every release first.
cluster "site" {
  for_each = {
    "bj-1" = { wave = "canary", region = "cn-north" }
    "sh-1" = { region = "cn-east" }
    "sh-2" = { region = "cn-east" }
    "gz-1" = { region = "cn-south" }
  }
  sandbox = each.key
  labels  = each.value
}

fleet "prod" {
  clusters = cluster.site
}

addon "flagger" {
  fleet = fleet.prod
}

addon "istio" {
  fleet = fleet.prod
}

rollout "checkout" {
  fleet     = fleet.prod
  namespace = "shop"
  image     = "ghcr.io/acme/checkout:${var.checkout_version}"
  strategy  = "canary"
  analysis  = { step_weight = 25, max_weight = 50, threshold = 3 }

  waves = [
    { name = "canary", selector = { wave = "canary" }, soak = "2s" },
    { name = "rest", max_concurrency = 2, soak = "2s", approval = var.approve_rest },
  ]
  on_failure        = "rollback"
  progress_deadline = "1m"

  depends_on = [addon.flagger, addon.istio]
}

output "waves" {
  value = rollout.checkout.waves
}

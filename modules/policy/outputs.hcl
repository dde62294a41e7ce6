output "name" {
  value       = var.name
  description = "The ClusterPolicy's name."
}

output "members" {
  value       = sort(local.selected)
  description = "The members the policy applies to."

  precondition {
    condition     = length(setsubtract(local.wanted, keys(local.fleet_labels))) == 0
    error_message = "policy \"${var.name}\" names members fleet ${var.fleet.name} does not have: ${join(", ", sort(setsubtract(local.wanted, keys(local.fleet_labels))))}."
  }

  precondition {
    condition     = var.preset != null || var.rules != null
    error_message = "policy \"${var.name}\" needs a `preset` or `rules`."
  }
}

output "propagated" {
  value       = local.karmada
  description = "Whether Karmada propagates the policy (false: applied to each member)."
}

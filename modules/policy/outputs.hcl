output "name" {
  value       = var.name
  description = "The ClusterPolicy's name."
}

output "members" {
  value       = sort(module.select.names)
  description = "The members the policy applies to."

  precondition {
    condition     = var.preset != null || var.rules != null
    error_message = "policy \"${var.name}\" needs a `preset` or `rules`."
  }
}

output "propagated" {
  value       = local.karmada
  description = "Whether Karmada propagates the policy (false: applied to each member)."
}

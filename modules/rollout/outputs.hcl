output "name" {
  value       = var.name
  description = "The application's name."
}

output "members" {
  value       = sort(local.selected)
  description = "The members it runs on."

  precondition {
    condition     = length(setsubtract(local.wanted, keys(local.fleet_labels))) == 0
    error_message = "rollout \"${var.name}\" names members fleet ${var.fleet.name} does not have: ${join(", ", sort(setsubtract(local.wanted, keys(local.fleet_labels))))}."
  }
}

output "image" {
  value       = var.image
  description = "The image every member runs."
}

output "deployments" {
  value       = { for name, d in kube_manifest.deployment : name => d.id }
  description = "The Deployment on each member (`namespace/name`), by member."
}

output "canaries" {
  value       = { for name, c in kube_manifest.canary : name => c.id }
  description = "The Flagger Canary on each member, by member (empty with strategy `none`)."
}

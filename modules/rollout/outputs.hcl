output "name" {
  value       = var.name
  description = "The application's name."
}

output "members" {
  value       = sort(module.select.names)
  description = "The members it runs on."
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

output "waves" {
  value       = [for w in builtin_rollout.this.waves : { name = w.name, members = w.selected }]
  description = "The waves as configured: `name` and the members each selects (null: the rest)."
}

output "wave_members" {
  value       = local.wave_members
  description = "Each wave's members by wave name (the rest resolved). A resource keyed by member that depends on this joins the rollout: each member's instance moves with that member, inside its wave's gates."
}

output "name" {
  value       = var.name
  description = "The addon's name."
}

output "members" {
  value       = sort(keys(local.members))
  description = "The members it is installed on."
}

output "chart" {
  value       = { repository = try(local.chart.repository, null), name = try(local.chart.name, null), version = local.version }
  description = "The chart installed."

  precondition {
    condition     = local.chart != null
    error_message = "addon \"${var.name}\" is not one flotilla knows (${join(", ", sort(keys(local.known)))}): set `chart = { repository, name, version }`."
  }
}

output "releases" {
  value       = { for name, r in kube_manifest.release : name => r.id }
  description = "The HelmRelease on each member, by member (known once each is Ready)."
}

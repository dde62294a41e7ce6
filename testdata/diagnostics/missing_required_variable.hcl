variable "cluster_name" {
  type        = string
  description = "Name of the cluster."
}

resource "builtin_data" "a" {
  input = var.cluster_name
}

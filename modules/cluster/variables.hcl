variable "name" {
  type        = string
  description = "The cluster's name (the block's label unless set)."
}

variable "management" {
  type        = any
  default     = null
  description = "Create the cluster with Cluster API on this management cluster: another cluster block (`cluster.mgmt`), or a connection `{ sandbox = \"mgmt\" }` / `{ kubeconfig_raw = \"...\" }`."
}

variable "sandbox" {
  type        = string
  default     = null
  description = "Attach the sandbox cluster of this name (started on demand)."
}

variable "kubeconfig" {
  type        = string
  default     = null
  description = "Attach the cluster this kubeconfig file reaches (with `context`)."
}

variable "context" {
  type        = string
  default     = null
  description = "The kubeconfig context of an attached cluster (default: its current one)."
}

variable "kubernetes_version" {
  type        = string
  default     = "v1.31.2"
  description = "The Kubernetes version of a created cluster; changing it upgrades the cluster in place."
}

variable "infrastructure" {
  type        = string
  default     = "docker"
  description = "The Cluster API infrastructure of a created cluster."

  validation {
    condition     = contains(["docker"], var.infrastructure)
    error_message = "Supported infrastructures: docker (Cluster API's Docker provider, which the sandbox simulates)."
  }
}

variable "control_plane_replicas" {
  type        = number
  default     = 1
  description = "Control plane machines of a created cluster."
}

variable "pod_cidr" {
  type        = string
  default     = "192.168.0.0/16"
  description = "The pod network of a created cluster."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels of the cluster (fleets select members by them, and join them with them)."
}

variable "edge" {
  type        = bool
  default     = false
  description = "An edge cluster: the KubeEdge cloud side runs here (labelled `flotilla.dev/edge = \"true\"`; install KubeEdge with `addon \"kubeedge\"`)."
}

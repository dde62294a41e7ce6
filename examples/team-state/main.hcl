# Team state: the state lives in a Kubernetes cluster (here the sandbox's `mgmt`), locked with
# a Lease, encrypted on the client with a key from the environment, one workspace per
# environment. Swap the backend block for `backend "postgres" { ... }` to keep it in a
# database instead (docs/state.md).

flotilla {
  backend "kubernetes" {
    sandbox       = "mgmt"
    namespace     = "default"
    secret_suffix = "platform"
  }

  encryption {
    method = "aes_gcm"
    key_provider "env" {
      variable = "FLOTILLA_STATE_KEY"
    }
  }
}

variable "api_token" {
  type      = string
  sensitive = true
  default   = "example-token-not-for-production"
}

resource "builtin_data" "settings" {
  input = {
    environment = flotilla.workspace
    replicas    = flotilla.workspace == "production" ? 3 : 1
  }
}

resource "builtin_data" "token" {
  input = var.api_token
}

output "environment" {
  value = builtin_data.settings.output.environment
}

output "replicas" {
  value = builtin_data.settings.output.replicas
}

# The generic kube provider against a sandbox cluster: a namespace, a ConfigMap, a Secret,
# a CustomResourceDefinition and an object of the new kind, and data sources reading back.

variable "db_password" {
  type      = string
  sensitive = true
  default   = "correct-horse-battery-staple"
}

variable "widget_size" {
  type    = number
  default = 3
}

# A sandbox cluster named "dev", started under .flotilla/sandbox when needed.
# For a real cluster: `kubeconfig = "~/.kube/config"` and `context = "dev"`.
provider "kube" {
  sandbox = "dev"
}

resource "kube_namespace" "shop" {
  name   = "shop"
  labels = { "team" = "payments" }
}

resource "kube_config_map" "settings" {
  name      = "settings"
  namespace = kube_namespace.shop.name
  data = {
    "currency" = "EUR"
    "replicas" = "2"
  }
}

resource "kube_secret" "db" {
  name      = "db"
  namespace = kube_namespace.shop.name
  data = {
    "password" = var.db_password
  }
}

resource "kube_crd" "widgets" {
  name = "widgets.example.com"
  spec = {
    group = "example.com"
    scope = "Namespaced"
    names = { plural = "widgets", singular = "widget", kind = "Widget" }
    versions = [{
      name    = "v1"
      served  = true
      storage = true
      schema = {
        openAPIV3Schema = {
          type = "object"
          properties = {
            spec = {
              type     = "object"
              required = ["size"]
              properties = {
                size = { type = "integer", minimum = 1, maximum = 10 }
                mode = { type = "string", enum = ["fast", "slow"], default = "slow" }
              }
            }
          }
        }
      }
    }]
  }
}

# Any object, given whole. Its kind is served once the CRD above is Established.
resource "kube_manifest" "widget" {
  manifest = {
    apiVersion = "example.com/v1"
    kind       = "Widget"
    metadata   = { name = "first", namespace = kube_namespace.shop.name }
    spec       = { size = var.widget_size }
  }
  depends_on = [kube_crd.widgets]
}

data "kube_object" "settings" {
  api_version = "v1"
  kind        = "ConfigMap"
  name        = kube_config_map.settings.name
  namespace   = kube_namespace.shop.name
}

data "kube_secret" "db" {
  name      = kube_secret.db.name
  namespace = kube_namespace.shop.name
}

# Read back through the data source: decoded, and sensitive all the way.
output "db_password" {
  value     = data.kube_secret.db.data["password"]
  sensitive = true
}

output "settings_uid" {
  value = data.kube_object.settings.object.metadata.uid
}

output "widget" {
  value = kube_manifest.widget.id
}

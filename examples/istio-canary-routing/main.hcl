# Canary routing for `checkout`: a gateway, the two subsets a DestinationRule defines, and a
# VirtualService that sends 90% of requests to `stable` and 10% to `canary`.

provider "istio" {
  sandbox = "mesh"
}

provider "kube" {
  sandbox = "mesh"
}

variable "canary_percent" {
  type    = number
  default = 10

  validation {
    condition     = var.canary_percent >= 0 && var.canary_percent <= 100
    error_message = "canary_percent is a percentage, from 0 to 100."
  }
}

resource "kube_namespace" "shop" {
  name = "shop"
}

resource "istio_gateway" "shop" {
  name      = "shop"
  namespace = kube_namespace.shop.name
  spec = {
    selector = { istio = "ingressgateway" }
    servers = [{
      port  = { number = 80, name = "http", protocol = "HTTP" }
      hosts = ["shop.example.com"]
    }]
  }
}

resource "istio_destination_rule" "checkout" {
  name      = "checkout"
  namespace = kube_namespace.shop.name
  spec = {
    host = "checkout.shop.svc.cluster.local"
    subsets = [
      { name = "stable", labels = { version = "v1" } },
      { name = "canary", labels = { version = "v2" } },
    ]
  }
}

resource "istio_virtual_service" "checkout" {
  name      = "checkout"
  namespace = kube_namespace.shop.name
  spec = {
    hosts = ["shop.example.com", "checkout"]
    # Names istiod resolves: flotilla orders the gateway and the DestinationRule first.
    gateways = ["shop/shop", "mesh"]
    http = [{
      match = [{ uri = { prefix = "/checkout" } }]
      route = [
        { destination = { host = "checkout", subset = "stable" }, weight = 100 - var.canary_percent },
        { destination = { host = "checkout", subset = "canary" }, weight = var.canary_percent },
      ]
    }]
  }
}

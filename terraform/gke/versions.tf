terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    # Renders deploy/overlays/gcp (or gcp-ipv6) as `kubectl apply -k` would, and applies it.
    kustomization = {
      source  = "kbst/kustomization"
      version = "~> 0.9"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_client_config" "current" {}

# The cluster's API with the caller's own (short-lived) access token.
provider "kustomization" {
  kubeconfig_raw = local.kubeconfig
}

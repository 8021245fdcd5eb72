"""`make plan`: what `pulumi up` would apply, who could then reach what, and what a change alters.

  build    run the program on Pulumi's mock engine, write its manifests in `kubectl apply` order
  report   the access matrix and findings the analysis computes from those files, against the
           config's declaration: JSON, text, Mermaid
  diff     two plans compared: cells opened or closed, findings, manifests
"""

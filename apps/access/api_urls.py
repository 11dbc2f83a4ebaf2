from django.urls import path

from apps.access import api

interaction_urls = [
    path("", api.InteractionListCreateApi.as_view(), name="interaction-list"),
    path(
        "<uuid:interaction_id>/close/",
        api.InteractionCloseApi.as_view(),
        name="interaction-close",
    ),
]

contact_urls = [
    path("relay/", api.ContactRelayApi.as_view(), name="contact-relay"),
]

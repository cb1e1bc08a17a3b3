# frozen_string_literal: true

# Puma's settings for `bin/bench connections`: idle keep-alive connections
# stay open for the whole measurement (Puma closes them after 20 s by
# default; Uma and Falcon get the same longer limit on their command lines).
persistent_timeout 300

# frozen_string_literal: true

module Uma
  # The gem's version.
  VERSION = "0.1.0"
end

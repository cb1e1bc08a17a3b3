# frozen_string_literal: true

# The website (uringmachine.dev): Markdown pages in numbered sections, the
# API reference from the doc comments, built into site/_site.
module Site
  ROOT = File.expand_path("..", __dir__)
  PROJECT = File.dirname(ROOT)
  PAGES = File.join(ROOT, "pages")
  ASSETS = File.join(ROOT, "assets")
  OUT = File.join(ROOT, "_site")

  # A build that must not be published (an undocumented method, a link to
  # an unknown method or page).
  class BuildError < StandardError; end
end

require_relative "site/page"
require_relative "site/markdown"
require_relative "site/api"
require_relative "site/layout"
require_relative "site/builder"
